"""Benchmark: copy-on-write growth of a poll worker's pool process.

    .venv/bin/python benchmarks/fork_memory.py --database /tmp/fork.db      # e2e.py's 100k, filled once (~20 s)
    .venv/bin/python benchmarks/fork_memory.py --database /tmp/fork.db --pages --by-mapping
    .venv/bin/python benchmarks/fork_memory.py --workload match --database /tmp/fork-match.db

What it does, as a prefork poll worker does (workers/runtime.py preload()):

1. a SQLite database of --subs tenant subscriptions, filled once when
   --database names a file that does not exist yet (then the script starts
   itself afresh, so that the fill's garbage is not measured):
   --workload e2e (default) -- benchmarks/e2e.py's subscriptions (queries
   about made-up entities, calibrated so that an item matches ~2; one
   tenant per 1,000, a webhook channel each: its --subscriptions-in
   database); --workload match -- benchmarks/match.py's rules as
   benchmarks/subscription_change.py's `fill` writes them (--tenants
   tenants, one channel each, 1% FX); without the Reuters file its articles
   match hundreds of rules each, so evidence is compiled for most rules;
2. the parent loads them (services.accounts.live.Live, with the collector
   paused, as `load_frozen` does), disposes of its connections and calls
   gc.freeze();
3. it forks one child which, like a pool process taking polls, opens its
   own store and, for each batch of --batch articles, applies the change log
   (`Live.refresh`) and runs the news pipeline's `notices` (the Classifier
   over the whole index, the evidence, the Notices) on --articles varied
   articles (e2e.py's items from 1,000 feeds, or match.py's articles);
4. the parent reads /proc/PID/smaps_rollup of both processes right after the
   fork and at checkpoints: PSS (shared pages split between the sharers;
   parent + child is what the two really take), USS (what only that process
   has) and Private_Dirty (pages the child has written since the fork:
   copied on write, or new).

--by-mapping: the child's Private_Dirty per mapping at the end. --pages:
for each kind of object of the index and the subscriptions, the share of
the 4 KiB pages holding such objects that the child had copied at the end
(/proc/self/pagemap's "exclusively mapped" bit, as root). A page holds
objects of several kinds, so a kind that is touched shows near 100% and one
only near touched ones shows what its neighbours cost.

It prints figures; it is not a test.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import struct
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- memory ---------------------------------------------------------------------
def rollup(pid: int) -> dict[str, int]:
    """kB from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"],
            "dirty": fields["Private_Dirty"]}


def dirty_by_mapping(pid: int) -> Counter:
    """Private_Dirty kB per mapping name ([heap], anonymous, a library...)."""
    out: Counter = Counter()
    name = "?"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else "[anonymous]"
            if name.startswith("/"):
                name = Path(name).name
        elif line.startswith("Private_Dirty:"):
            out[name] += int(head[1])
    return out


def mb(kb: int) -> str:
    return f"{kb / 1024:,.1f}"


# -- the parent's load ----------------------------------------------------------
def load(url: str):
    from services import collector
    from services.accounts.live import Live
    from services.store import Store

    store = Store(url)
    with collector.paused():
        live = Live(store)
        store.dispose()
        gc.freeze()
    return live, store


def fill_e2e(url: str, m: int, seed: int) -> dict:
    """benchmarks/e2e.py's subscriptions (queries about made-up entities,
    calibrated so that an item matches ~2) stored as its --subscriptions-in
    database does (one tenant per 1,000, a webhook channel each)."""
    import e2e  # benchmarks/e2e.py

    from services.store import schema

    subs, per_item = e2e.calibrate(m, 2.0, seed)
    schema.upgrade(url)
    e2e.store_in_database(url, subs, "https://hooks.example.com")
    return {"workload": "e2e", "entities": len(subs.entities), "per_item": per_item}


def articles(workload: str, n: int, seed: int, made: dict) -> list:
    """`n` varied articles as the news pipeline has them: e2e.py's items
    (one or two entities, event words, filler; from 1,000 feeds) or
    match.py's generated ones."""
    from services.news.article import Article

    rng = random.Random(seed)
    if workload == "e2e":
        import e2e  # benchmarks/e2e.py

        entities = [e2e.entity_word(i) for i in range(made["entities"])]
        out = []
        for k in range(n):
            item = e2e.make_item(k % 1000, k, entities, rng)
            out.append(Article(source=e2e.source_name(item.feed), id=item.guid, title=item.title,
                               summary=item.summary, link=f"http://bench.test/{item.guid}", published=NOW,
                               lang="en"))
        return out
    import match  # benchmarks/match.py

    generated, _ = match.make_articles(n, rng, match.DEFAULT_REUTERS)
    return [Article(source=a["source"], id=f"a{i}", title=a["title"], summary=a["summary"],
                    link=f"https://news.example.com/{i}", published=NOW, lang=None)
            for i, a in enumerate(generated)]


# -- which objects live on the pages the child copied ---------------------------------
def kinds(live) -> dict[str, list]:
    """Objects of the index and the subscriptions, by kind (one list each;
    containers are listed, not walked twice)."""
    import numpy as np

    news = live.subscriptions.news
    m = news.matcher
    out: dict[str, list] = defaultdict(list)
    for table, index in m._postings.lists().items():
        for key, slot in index.items():
            out["postings: keys"].append(key)
            out["postings: slot (outer list)"].append(slot)
            for ids in slot:
                if ids is not None:  # array('i'): the ids are machine ints inside it, no objects of their own
                    out["postings: id arrays"].append(ids)
    for table, index in m._postings.arrays().items():
        for key, slot in index.items():
            out["postings: array slot tuples"].append(slot)
            for a in slot:
                if isinstance(a, np.ndarray):
                    out["postings: ndarray objects"].append(a)
    for entry in m._rules:
        if entry is None:
            continue
        out["matcher: _Entry"].append(entry)
        out["matcher: entry.filed + tuples"].append(entry.filed)
        out["matcher: entry.filed + tuples"].extend(entry.filed)
        out["matcher: entry.clauses/checks lists"] += [entry.clauses, entry.checks]
        out["matcher: keys (tuples)"].append(entry.key)
        out["rules: parsed Node trees (roots)"].append(entry.rule)
    specs = m._spec.values() if isinstance(m._spec, dict) else m._spec  # a dict before the fork-memory work
    out["matcher: _spec tuples"] += [spec for spec in specs if spec is not None]
    for key, (order, sub) in news._subs.items():
        out["classifier: _subs value tuples"].append(news._subs[key])
        out["subscriptions: Subscription objects"].append(sub)
        out["subscriptions: id/name/query strings"] += [sub.id, sub.name, sub.query]
    return out


def addresses(objs: list) -> set[int]:
    """The pages holding the objects' headers."""
    return {id(o) // PAGE for o in objs}


def exclusive(pages: set[int]) -> int:
    """How many of these (virtual) pages are mapped only in this process."""
    n = 0
    with open("/proc/self/pagemap", "rb") as f:
        for p in pages:
            f.seek(p * 8)
            (entry,) = struct.unpack("<Q", f.read(8))
            if entry >> 63 and (entry >> 56) & 1:  # present, exclusively mapped
                n += 1
    return n


# -- the child --------------------------------------------------------------------
def child(live, url: str, items: list, batch: int, checkpoints: list[int], to_parent: int, from_parent: int,
          pages: dict[str, set[int]] | None) -> None:
    from services.news import pipeline
    from services.store import Store

    def say(msg: str) -> None:
        os.write(to_parent, (msg + "\n").encode())
        os.read(from_parent, 1)  # the parent has measured

    live.store = Store(url)  # a pool process opens its own (worker_process_init)
    if pages is not None:
        before = {k: exclusive(v) for k, v in pages.items()}
    say("forked 0 0 0")
    done, matches, t0 = 0, 0, time.perf_counter()
    for n in checkpoints:
        while done < n:
            chunk = items[done:min(n, done + batch)]
            live.refresh()
            decided = pipeline.notices(chunk, live.subscriptions, live.store, NOW)
            matches += len(decided.notices)
            done += len(chunk)
        say(f"after {done} {matches} {time.perf_counter() - t0:.2f}")
    if pages is not None:
        lines = [f"{k}\t{len(v)}\t{before[k]}\t{exclusive(v)}" for k, v in pages.items()]
        os.write(to_parent, ("pages\n" + "\n".join(lines) + "\nend\n").encode())
    live.store.dispose()
    os._exit(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subs", type=int, default=100_000)
    ap.add_argument("--workload", choices=("e2e", "match"), default="e2e",
                    help="e2e: benchmarks/e2e.py's subscriptions and items (~2 matches per item, what the "
                         "load run polls); match: benchmarks/match.py's rules as subscription_change.py "
                         "fills them, and its articles (hundreds of matches each without the Reuters file)")
    ap.add_argument("--tenants", type=int, default=1_000)
    ap.add_argument("--database", type=Path, help="SQLite file: filled when missing, reused when present")
    ap.add_argument("--articles", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=20, help="articles per poll (a refresh before each)")
    ap.add_argument("--seed", type=int, default=7, help="the rules' seed (the fill's)")
    ap.add_argument("--pages", action="store_true", help="which kinds of objects sit on the copied pages")
    ap.add_argument("--stemmer-cache", action="store_true",
                    help="PyStemmer's own word cache back on (10,000 words; services/rules/text.py turns it off: "
                         "when full it is purged wholesale, and every hit writes a counter into it)")
    ap.add_argument("--by-mapping", action="store_true", help="the child's Private_Dirty per mapping at the end")
    args = ap.parse_args()

    import subscription_change as sc  # benchmarks/subscription_change.py

    tmp = None
    db_path = args.database
    if db_path is None:
        tmp = Path(tempfile.mkdtemp(prefix="tulpar-forkmem-"))
        db_path = tmp / "bench.db"
    url = f"sqlite:///{db_path}"
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    side = db_path.with_name(db_path.name + ".json")  # what the articles need to know of the fill
    if not db_path.exists():
        print(f"filling {db_path}: {args.subs:,} subscriptions ({args.workload}) ...", flush=True)
        t = time.perf_counter()
        if args.workload == "e2e":
            side.write_text(json.dumps(fill_e2e(url, args.subs, args.seed)))
        else:
            sc.fill(url, args.subs, args.tenants, args.seed)
            side.write_text(json.dumps({"workload": "match"}))
        print(f"  written in {time.perf_counter() - t:.1f} s; starting afresh to measure", flush=True)
        # Filling left this process large: measure in a clean one.
        os.execv(sys.executable, [sys.executable, *sys.argv])
    made = json.loads(side.read_text())
    if made["workload"] != args.workload:
        sys.exit(f"{db_path} was filled for --workload {made['workload']}")
    items = articles(args.workload, args.articles, args.seed + 1000, made)
    if args.stemmer_cache:
        from services.rules import text

        text._ENGLISH.maxCacheSize = text._RUSSIAN.maxCacheSize = 10_000
    base = rollup(os.getpid())
    t0, c0 = time.perf_counter(), time.process_time()
    live, store = load(url)
    news = live.subscriptions.news
    print(f"parent: loaded {len(news):,} news + {len(live.subscriptions.fx):,} FX subscriptions in "
          f"{time.perf_counter() - t0:.1f} s ({time.process_time() - c0:.1f} CPU-s); "
          f"PSS {mb(base['pss'])} -> {mb(rollup(os.getpid())['pss'])} MB", flush=True)
    pages = None
    if args.pages:
        pages = {k: addresses(v) for k, v in kinds(live).items()}
        gc.freeze()

    checkpoints = sorted({min(args.articles, n) for n in (args.articles // 6, args.articles // 2, args.articles)})
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(up_r)
        os.close(down_w)
        try:
            child(live, url, items, args.batch, checkpoints, up_w, down_r, pages)
        finally:
            os._exit(1)
    os.close(up_w)
    os.close(down_r)
    reader = os.fdopen(up_r)
    rows = []
    first = None
    for line in reader:
        what = line.split()
        if what[0] == "pages":
            break
        c, p = rollup(pid), rollup(os.getpid())
        first = first or c
        rows.append((what, c, p))
        os.write(down_w, b"x")
        if what[0] == "after" and int(what[1]) == args.articles:
            if args.by_mapping:
                by_map = dirty_by_mapping(pid)
            if not args.pages:
                break
    page_rows = []
    if args.pages:
        for line in reader:
            if line.strip() == "end":
                break
            page_rows.append(line.rstrip("\n").split("\t"))
    _, status = os.waitpid(pid, 0)
    if status:
        sys.exit(f"child failed (status {status})")

    print(f"\nchild: {args.articles:,} articles in polls of {args.batch} (Live.refresh + the news pipeline's "
          "notices each); memory in MB")
    print(f"  {'point':26s} {'child PSS':>9s} {'USS':>7s} {'dirty':>7s} | {'parent PSS':>10s} {'USS':>7s}"
          f" | {'both PSS':>8s}")
    for what, c, p in rows:
        label = "just forked" if what[0] == "forked" else \
            f"{int(what[1]):,} articles ({int(what[2]):,} matches, {float(what[3]):.0f} s)"
        print(f"  {label:26s} {mb(c['pss']):>9s} {mb(c['uss']):>7s} {mb(c['dirty']):>7s} | "
              f"{mb(p['pss']):>10s} {mb(p['uss']):>7s} | {mb(c['pss'] + p['pss']):>8s}")
    last = rows[-1][1]
    print(f"  child growth: PSS +{mb(last['pss'] - first['pss'])} MB, USS +{mb(last['uss'] - first['uss'])} MB, "
          f"Private_Dirty +{mb(last['dirty'] - first['dirty'])} MB (parent's RSS {mb(rows[0][2]['rss'])} MB)")
    if args.by_mapping:
        print("  child's Private_Dirty by mapping at the end (MB): "
              + ", ".join(f"{k} {mb(v)}" for k, v in by_map.most_common(6)))
    if page_rows:
        print("\n  pages holding each kind of object: how many, and the share the child had copied "
              "(just forked -> at the end)")
        for name, n, before, after in page_rows:
            n, before, after = int(n), int(before), int(after)
            print(f"    {name:40s} {n:>8,} pages  {100 * before / max(n, 1):5.1f}% -> {100 * after / max(n, 1):5.1f}%")
    if tmp is not None:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
