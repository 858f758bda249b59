"""Benchmark: a worker's subscriptions at 100k stored in the database.

    .venv/bin/python benchmarks/subscription_change.py                 # 100k, SQLite
    .venv/bin/python benchmarks/subscription_change.py --subs 10000
    DATABASE_URL=postgresql://... .venv/bin/python benchmarks/subscription_change.py   # PostgreSQL too

What it does:

1. a fresh database (`tulpar db upgrade`'s schema; SQLite in a temp dir, and
   a throwaway schema on DATABASE_URL when that is set) with --subs tenant
   subscriptions written in bulk as the account functions leave them: --tenants
   tenants, each with one confirmed webhook channel, subscriptions spread
   over them (news queries from benchmarks/match.py's RuleMaker, the
   matcher benchmark's mix; 1% FX rules), one change-log row each;
2. in a fresh child process (a worker's pool process): the time to load them
   all (services.accounts.live.Live: the queries, parsing, the index) and
   the memory it adds (RSS before and after, and the peak);
3. then, in that process, --changes times each of: a query change, a pause,
   a resume, a create and a delete through services.accounts.subscriptions
   on another connection (as the API would), followed by Live.refresh(): the
   time of the write, of the refresh until the index has it (checked), and
   of a refresh when nothing changed (what every poll pays).

A worker applies a change at its next poll's start, so in a running service
the delay is the wait for the next poll plus the refresh time printed here.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
FX_RULES = [{"pair": "USD/KZT", "change_pct": 1.0}, {"pair": "KZT/USD", "above": 0.002},
            {"pair": "EUR/KZT", "change_pct": 2.0, "window": "7d"}]


# -- the database --------------------------------------------------------------
def databases() -> list[tuple[str, str, callable]]:
    """(label, url, cleanup) of each database to run on."""
    out = []
    tmp = Path(tempfile.mkdtemp(prefix="tulpar-subbench-"))
    out.append(("sqlite", f"sqlite:///{tmp / 'bench.db'}", lambda: shutil.rmtree(tmp, ignore_errors=True)))
    base = os.environ.get("DATABASE_URL")
    if base:
        import sqlalchemy as sa

        if base.startswith("postgres://"):
            base = "postgresql://" + base[len("postgres://"):]
        if base.startswith("postgresql://"):
            base = "postgresql+psycopg://" + base[len("postgresql://"):]
        name = "bench_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))

        def drop():
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
            engine.dispose()

        sep = "&" if "?" in base else "?"
        out.append(("postgresql", f"{base}{sep}options=-csearch_path%3D{name}", drop))
    return out


def fill(url: str, n_subs: int, n_tenants: int, seed: int) -> float:
    """Write the tenants, channels, subscriptions and change log in bulk;
    returns the seconds it took."""
    import match  # benchmarks/match.py
    from sqlalchemy import insert

    from services.accounts import ids
    from services.store import Store, schema
    from services.store.models import Channel, ChannelType, SubscriptionChange, SubscriptionChannel, Tenant, \
        TenantSubscription

    started = time.perf_counter()
    schema.upgrade(url)
    rng = random.Random(seed)
    articles, _ = match.make_articles(300, rng, match.DEFAULT_REUTERS)
    maker = match.RuleMaker(match.vocabulary_texts(articles, match.DEFAULT_REUTERS), rng)
    store = Store(url)
    tenants, channels = [], []
    for t in range(n_tenants):
        tid = f"tn_{t:06d}"
        tenants.append({"id": tid, "name": f"tenant-{t}", "key_hash": ids.digest(f"key-{t}"), "created_at": NOW})
        channels.append({"id": f"ch_{t:06d}", "tenant_id": tid, "type": ChannelType.WEBHOOK,
                         "target": f"https://hooks.example.com/{t}", "format": "json",
                         "secret": ids.new_webhook_secret(), "confirmed_at": NOW, "created_at": NOW})
    with store.sessions.begin() as s:
        s.execute(insert(Tenant), tenants)
        s.execute(insert(Channel), channels)
    chunk = 5000
    for start in range(0, n_subs, chunk):
        subs, links, log = [], [], []
        for n in range(start, min(n_subs, start + chunk)):
            t = n % n_tenants
            sid = f"sub_{n:08d}"
            fx = FX_RULES[n % len(FX_RULES)] if n % 100 == 99 else None
            subs.append({"id": sid, "tenant_id": f"tn_{t:06d}", "name": f"s{n}",
                         "query": None if fx else maker.rule(), "fx": fx, "paused": False,
                         "created_at": NOW, "updated_at": NOW})
            links.append({"subscription_id": sid, "channel_id": f"ch_{t:06d}", "position": 0})
            log.append({"subscription_id": sid, "at": NOW})
        with store.sessions.begin() as s:
            s.execute(insert(TenantSubscription), subs)
            s.execute(insert(SubscriptionChannel), links)
            s.execute(insert(SubscriptionChange), log)
    store.dispose()
    return time.perf_counter() - started


# -- the worker (child process) ------------------------------------------------------
def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(url: str, changes: int, seed: int) -> None:
    """A worker's pool process: load, then time changes and refreshes; one
    JSON line on stdout."""
    t_import = time.perf_counter()
    from sqlalchemy import select

    from services.accounts import subscriptions as accounts
    from services.accounts.live import Live
    from services.store import Store
    from services.store.models import TenantSubscription

    imported = time.perf_counter() - t_import
    worker_store, api_store = Store(url), Store(url)
    rss0 = rss_mb()
    cpu0, t0 = time.process_time(), time.perf_counter()
    live = Live(worker_store)
    load_s, load_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss1, hwm = rss_mb(), rss_mb("VmHWM")
    news = live.subscriptions.news
    loaded = len(news) + len(live.subscriptions.fx)

    with api_store.sessions() as s:
        rows = list(s.execute(select(TenantSubscription.id, TenantSubscription.tenant_id)
                              .where(TenantSubscription.query.is_not(None))))
    rng = random.Random(seed)
    picks = rng.sample(rows, changes)
    timings: dict[str, list[tuple[float, float]]] = {k: [] for k in ("query", "pause", "resume", "create",
                                                                     "delete")}
    idle = []

    def timed(kind, write, check):
        t = time.perf_counter()
        result = write()
        w = time.perf_counter() - t
        t = time.perf_counter()
        changed = live.refresh()
        r = time.perf_counter() - t
        assert changed and check(result), (kind, changed)
        timings[kind].append((w, r))
        t = time.perf_counter()
        assert live.refresh() == []
        idle.append(time.perf_counter() - t)
        return result

    key = lambda sid: ("tenant", sid)  # noqa: E731
    for n, (sid, tid) in enumerate(picks):
        query = f"benchmark{n} AND changed"
        timed("query", lambda: accounts.update(api_store, tid, sid, NOW, query=query),
              lambda _: news.matcher._entries[key(sid)] is not None and news._subs[key(sid)][1].query == query)
        timed("pause", lambda: accounts.update(api_store, tid, sid, NOW, paused=True),
              lambda _: sid not in live.subscriptions)
        timed("resume", lambda: accounts.update(api_store, tid, sid, NOW, paused=False),
              lambda _: sid in live.subscriptions)
        made = timed("create", lambda: accounts.create(api_store, tid, f"bench-new-{n}", [f"ch_{tid[3:]}"], NOW,
                                                       query=f"fresh{n} OR newer{n}"),
                     lambda v: v.row.id in live.subscriptions)
        timed("delete", lambda: accounts.delete_(api_store, tid, made.row.id, NOW),
              lambda _: made.row.id not in live.subscriptions)
    print(json.dumps({"imported_s": imported, "loaded": loaded, "load_s": load_s, "load_cpu_s": load_cpu,
                      "rss_before_mb": rss0, "rss_after_mb": rss1, "peak_mb": hwm,
                      "timings": timings, "idle": idle}))


# -- report -----------------------------------------------------------------------------
def ms(v: float) -> str:
    return f"{v * 1000:8.1f}"


def run(label: str, url: str, args) -> None:
    print(f"\n== {label}: {args.subs:,} subscriptions over {args.tenants:,} tenants ==")
    filled = fill(url, args.subs, args.tenants, args.seed)
    print(f"  written in bulk in {filled:.1f} s")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", url, "--changes", str(args.changes),
                          "--seed", str(args.seed)], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"child failed:\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  worker start: imports {r['imported_s']:.2f} s, then Live() loads {r['loaded']:,} subscriptions "
          f"in {r['load_s']:.2f} s ({r['load_cpu_s']:.2f} CPU-s)")
    print(f"  memory: RSS {r['rss_before_mb']:.0f} MB -> {r['rss_after_mb']:.0f} MB "
          f"(+{r['rss_after_mb'] - r['rss_before_mb']:.0f} MB), peak {r['peak_mb']:.0f} MB")
    print(f"  change -> index ({args.changes} of each; ms: write through accounts, then refresh until the "
          "index has it)")
    print(f"    {'change':8s} {'write p50':>9s} {'refresh p50':>11s} {'p90':>8s} {'max':>8s}")
    for kind, pairs in r["timings"].items():
        writes, refreshes = [p[0] for p in pairs], sorted(p[1] for p in pairs)
        p90 = refreshes[min(len(refreshes) - 1, int(len(refreshes) * 0.9))]
        print(f"    {kind:8s} {ms(statistics.median(writes)):>9s} {ms(statistics.median(refreshes)):>11s} "
              f"{ms(p90)} {ms(max(refreshes))}")
    idle = sorted(r["idle"])
    print(f"  refresh with nothing changed (every poll): p50 {ms(statistics.median(idle)).strip()} ms, "
          f"max {ms(idle[-1]).strip()} ms over {len(idle)}")
    print(f"  child process wall time {wall:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subs", type=int, default=100_000)
    ap.add_argument("--tenants", type=int, default=1_000)
    ap.add_argument("--changes", type=int, default=20, help="changes of each kind timed")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.changes, args.seed)
        return
    for label, url, cleanup in databases():
        try:
            run(label, url, args)
        finally:
            cleanup()


if __name__ == "__main__":
    main()
