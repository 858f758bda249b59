"""Benchmark: the whole news pipeline on real parts, from a feed item appearing to
the webhook receiver getting the alert.

    .venv/bin/python benchmarks/pipeline.py                  # N=20 feeds x M=50 items, ~1-2 min
    .venv/bin/python benchmarks/pipeline.py --quick          # 5 x 20, ~30 s
    .venv/bin/python benchmarks/pipeline.py --spread 0       # burst: all items at once (throughput)
    .venv/bin/python benchmarks/pipeline.py --email          # email channel too (SMTP sink)
    .venv/bin/python benchmarks/pipeline.py --direct         # in-process poll_news only, no Celery
    .venv/bin/python benchmarks/pipeline.py --direct --profile
    .venv/bin/python benchmarks/pipeline.py --database-url postgresql://USER@HOST/DB

End-to-end mode starts, all on loopback and in a temp directory: a private
redis-server (services.local.RedisProcess), a SQLite file (or a fresh schema in
the PostgreSQL of --database-url), a FileServer serving N RSS feeds, a
WebhookSink (and a MailSink with --email), a config with N sources polled every
--interval seconds and four subscriptions in the query language, and a real
worker: `python -m celery -A workers.app worker -B` (beat embedded, so the
sources are polled on their schedule exactly as in production).

It then publishes M items into every feed, spread evenly over --spread seconds
(each feed at its own phase; --spread 0 publishes everything at once). A feed
file is replaced atomically; the moment right after the rename is the item's
publication time. For every webhook received the latency is (received -
published). Throughput is items published / (last expected delivery -
first publication). Nothing may be lost: received must equal expected (the
set of (item, subscription, channel) the real Classifier says should match);
missing and duplicate deliveries are listed.

Latency includes waiting for the next poll: with polls every I seconds an item
waits on average I/2 (up to I) before anything reads it. The figures are
printed as measured; the per-stage split below them comes from the delivery
rows (created_at = poll start, enqueued_at, delivered_at).

--direct measures the in-process pipeline alone: services.news.pipeline.poll_news
over the N feeds (fetched from the loopback FileServer, parsed, deduped,
classified, routed, rendered, committed to the outbox), no Redis or Celery:
round 1 all items new, round 2 unchanged feeds (304), round 3 one new item in
each feed (the steady state: a changed feed is re-parsed whole).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.local.http_servers import FileServer, WebhookSink  # noqa: E402

# -- the news: what the feeds carry -----------------------------------------
# Item k of every feed is of kind KINDS[k % 20]; a known share of the kinds
# matches each subscription, and the near misses make the NOT and AND work.
STORIES = {
    "tariff": [  # matches trade-kz
        ("Kazakhstan weighs new import duties on Chinese steel",
         "The ministry of trade said tariffs of up to 15% could apply from March to protect local mills."),
        ("US tariff list names Kazakh ferroalloys",
         "Exporters in Aktobe expect the duty to cut shipments by a fifth this year."),
        ("Astana answers Washington's tariffs on Kazakh uranium",
         "Officials said the duties break the 1994 trade agreement and asked for talks."),
    ],
    "cpc": [  # matches cpc-disruption
        ("CPC curtails Caspian pipeline loadings after storm damage",
         "Two of three single-point moorings at Novorossiysk were damaged; exports are halted until repairs end."),
        ("Caspian Pipeline Consortium suspends pumping at Atyrau station",
         "A drone attack damaged the station; the CPC said loadings would be curtailed for a week."),
    ],
    "tenge": [  # matches tenge-moves
        ("Tenge hits record low against the dollar",
         "The national currency weakened past 540 per dollar as oil prices fell."),
        ("Tenge weakens for a fifth day",
         "Traders on KASE blamed dividend season and lower oil."),
    ],
    "cpc-drill": [  # near miss: cpc AND halt* but NOT drill
        ("CPC drill halts terminal traffic for two hours",
         "The planned safety drill at the CPC marine terminal ended without incident."),
    ],
    "duty-elsewhere": [  # near miss: duty but no Kazakh word
        ("Uzbekistan cuts import duties on electric cars",
         "The decree removes the duty on cars priced under 40,000 dollars until 2028."),
    ],
    "filler": [
        ("Wheat harvest in Kostanay region beats forecast",
         "Farmers gathered 5.1 million tonnes; elevators report a shortage of rail cars."),
        ("Bishkek opens a new metro feasibility study",
         "The city council approved a study of a light-rail line along Chui avenue."),
        ("Almaty air quality improves after gas switch",
         "Two coal plants moved to gas; winter smog readings fell by a third."),
        ("Dushanbe hosts a water conference",
         "Delegates from 60 countries discussed glacier loss in the Pamirs."),
        ("Ashgabat marathon draws record field",
         "Runners from 30 countries took part in the autumn race through the capital."),
        ("Tashkent stock exchange lists a copper miner",
         "Almalyk's shares rose 4% on the first day of trading."),
    ],
}
KINDS = (["tariff"] * 4 + ["cpc"] * 2 + ["tenge"] + ["cpc-drill"] + ["duty-elsewhere"]
         + ["filler"] * 11)
assert len(KINDS) == 20

SUBSCRIPTIONS = [
    # (name, query, webhook path, email address or None)
    ("trade-kz", '(tariff* OR duty OR duties OR "import duties") AND (kazakh* OR kazakhstan OR astana)',
     "/hooks/trade", "trade-desk@example.com"),
    ("cpc-disruption", '(cpc OR "caspian pipeline") AND (halt* OR suspend* OR curtail* OR damage*) AND NOT drill',
     "/hooks/energy", "energy-desk@example.com"),
    ("tenge-moves", 'title:tenge AND (record OR weak* OR strong* OR "national bank")',
     "/hooks/fx", None),
    ("kg-uranium", 'uranium AND (kyrgyz* OR bishkek) AND NOT drill',  # never matches here
     "/hooks/mining", None),
]

RSS = ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
       "<title>{title}</title><link>http://bench.test/{name}/</link>"
       "<description>tulpar pipeline benchmark</description><language>en</language>"
       "{items}</channel></rss>")
ITEM = ("<item><title>{title}</title><link>http://bench.test/{guid}</link>"
        '<guid isPermaLink="false">{guid}</guid><pubDate>{date}</pubDate>'
        "<description>{summary}</description></item>")


@dataclass
class Item:
    feed: int
    k: int
    guid: str
    title: str
    summary: str
    kind: str
    published: float | None = None  # wall clock, right after the feed file was replaced


def make_items(n_feeds: int, m_items: int) -> list[list[Item]]:
    feeds = []
    for f in range(n_feeds):
        items = []
        for k in range(m_items):
            kind = KINDS[(k + f) % len(KINDS)]
            stories = STORIES[kind]
            title, summary = stories[(k // len(KINDS) + f) % len(stories)]
            guid = f"bench-{f:03d}-{k:05d}"
            items.append(Item(f, k, guid, f"{title} ({f}.{k})", summary, kind))
        feeds.append(items)
    return feeds


def feed_name(f: int) -> str:
    return f"wire-{f:03d}"


def write_feed(root: Path, f: int, items: list[Item]) -> None:
    """Replace the feed file atomically: newest item first, like real feeds."""
    body = RSS.format(
        title=f"Bench wire {f}", name=feed_name(f),
        items="".join(ITEM.format(title=escape(i.title), summary=escape(i.summary), guid=i.guid,
                                  date=formatdate(i.published or time.time(), usegmt=True))
                      for i in reversed(items)))
    path = root / f"{feed_name(f)}.xml"
    tmp = path.with_suffix(f".tmp{threading.get_ident()}")
    tmp.write_text(body, encoding="utf-8")
    tmp.rename(path)


def write_config(path: Path, n_feeds: int, feed_base: str, webhook_base: str, interval: float,
                 email: bool) -> None:
    lines = ["allow_private_targets: true", "sources:"]
    for f in range(n_feeds):
        lines += [f"  - name: {feed_name(f)}", "    kind: feed",
                  f"    url: {feed_base}/{feed_name(f)}.xml", f"    interval: {interval:g}s"]
    lines.append("subscriptions:")
    for name, query, hook, address in SUBSCRIPTIONS:
        chans = [webhook_base + hook] + ([f"mailto:{address}"] if email and address else [])
        lines += [f"  - name: {name}", f"    query: {json.dumps(query)}",
                  "    channels: [" + ", ".join(chans) + "]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def expected_deliveries(feeds: list[list[Item]], config_path: Path) -> dict[tuple, str]:
    """(sub, guid, channel) -> channel kind, from the real Classifier: the set
    the pipeline must deliver. Also checks the story design (kinds) agrees."""
    from services.delivery import channels
    from services import config as config_mod
    from services.news.article import Article
    from services.news.classify import Classifier

    cfg = config_mod.load(config_path)
    classifier = Classifier(cfg.subscriptions)
    design = {"tariff": {"trade-kz"}, "cpc": {"cpc-disruption"}, "tenge": {"tenge-moves"}}
    out = {}
    for items in feeds:
        articles = [Article(feed_name(i.feed), i.guid, i.title, i.summary, f"http://bench.test/{i.guid}",
                            None, "en") for i in items]
        got = defaultdict(set)
        for m in classifier.classify(articles).matches:
            got[m.article.id].add(m.subscription.name)
            for ch in m.subscription.channels:
                out[(m.subscription.name, m.article.id, ch)] = channels.kind(ch)
        for i in items:
            if got[i.guid] != design.get(i.kind, set()):
                raise SystemExit(f"benchmark design broken: {i.guid} ({i.kind}) matched {sorted(got[i.guid])}")
    return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    idx = min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[idx]


def fmt_latency(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"p50 {pct(values, 50) * 1000:.0f} ms, p90 {pct(values, 90) * 1000:.0f} ms, "
            f"p99 {pct(values, 99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
            f"(mean {statistics.fmean(values) * 1000:.0f} ms, n={len(values)})")


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3]) + ";"
    except OSError:
        load = ""
    return f"{os.cpu_count()} CPUs ({model}), Python {sys.version.split()[0]};{load} code {revision()}"


def revision() -> str:
    """The commit measured, and whether the code under it was edited."""
    marker = ROOT / ".snapshot-commit"  # a `git archive` export made for measuring
    if marker.exists():
        return marker.read_text().strip() + " (clean export)"
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "services", "workers", "templates"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + (" + uncommitted changes in services/workers/templates" if dirty else "")


# -- resources, always cleaned up -------------------------------------------
class Resources:
    """Everything started, stopped in reverse order exactly once (normal exit,
    exception, Ctrl-C, SIGTERM)."""

    def __init__(self):
        self._stops: list[tuple[str, object]] = []
        self._done = False
        atexit.register(self.close)

    def add(self, what: str, stop) -> None:
        self._stops.append((what, stop))

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        for what, stop in reversed(self._stops):
            try:
                stop()
            except Exception as exc:  # keep stopping the rest
                print(f"cleanup: {what}: {exc}", file=sys.stderr)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def database(args, tmp: Path, res: Resources) -> str:
    """A SQLAlchemy URL for a fresh database: a SQLite file in `tmp`, or a new
    schema in the PostgreSQL of --database-url (dropped at the end)."""
    if not args.database_url:
        return f"sqlite:///{tmp / 'var' / 'tulpar.db'}"
    import sqlalchemy as sa

    from services.store.db import _normalise_url

    base = _normalise_url(args.database_url)
    schema = "bench_" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    res.add("postgres schema", drop)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


# -- end to end ---------------------------------------------------------------
@dataclass
class Worker:
    cmd: list[str]
    env: dict
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Warm shutdown: SIGTERM to the main process (it lets running tasks
        finish and stops its pool and beat), then SIGKILL whatever is left
        of its process group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait()
        self.proc = None


def run_e2e(args, tmp: Path, res: Resources) -> int:
    from services.local.mail_sink import MailSink
    from services.local.redis_process import RedisProcess
    from services.store import Store

    n, m = args.feeds, args.items
    www = tmp / "www"
    www.mkdir()
    (tmp / "var").mkdir()
    feeds = make_items(n, m)
    for f in range(n):
        write_feed(www, f, [])

    redis_proc = RedisProcess(tmp / "redis").start()
    res.add("redis-server", redis_proc.stop)
    files = FileServer(www).start()
    res.add("feed server", files.stop)
    hooks = WebhookSink().start()  # records in memory; no JSON files (not what we measure)
    res.add("webhook sink", hooks.stop)
    mail = None
    if args.email:
        mail = MailSink(tmp / "mail").start()
        res.add("mail sink", mail.stop)

    config = tmp / "tulpar.yaml"
    write_config(config, n, files.url, hooks.url, args.interval, args.email)
    expected = expected_deliveries(feeds, config)
    exp_hooks = {k for k, kind in expected.items() if kind == "webhook"}
    exp_mail = {k for k, kind in expected.items() if kind == "email"}

    db_url = database(args, tmp, res)
    store = Store(db_url)
    store.create_schema()
    res.add("store", store.dispose)

    env = {**os.environ,
           "REDIS_URL": redis_proc.url, "TULPAR_CONFIG": str(config), "TULPAR_VAR_DIR": str(tmp / "var"),
           "TULPAR_SMTP_HOST": "127.0.0.1", "TULPAR_SMTP_PORT": str(mail.port if mail else 9),
           "TULPAR_SWEEP_INTERVAL": str(args.sweep_interval), "TULPAR_HTTP_TIMEOUT": "10",
           "DATABASE_URL": db_url if args.database_url else ""}
    if not args.database_url:
        env.pop("DATABASE_URL")
    worker = Worker([sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-B",
                     "--loglevel", args.loglevel, "--concurrency", str(args.concurrency),
                     "--schedule", str(tmp / "var" / "beat-schedule"),
                     "--hostname", f"bench-{os.getpid()}@%h"],
                    env, tmp / "worker.log")

    print(f"machine: {machine()}")
    print(f"setup: {n} feeds x {m} items = {n * m} items, published over {args.spread:g} s; "
          f"poll interval {args.interval:g} s per source; worker --concurrency {args.concurrency} "
          f"(+ embedded beat); database {'PostgreSQL' if args.database_url else 'SQLite (WAL)'}; "
          f"channels: webhook{' + email' if args.email else ''}")
    print(f"expected: {len(exp_hooks)} webhooks ({len(exp_hooks) / (n * m):.0%} of items match a "
          f"subscription){f', {len(exp_mail)} emails' if args.email else ''}")

    t_start = time.monotonic()
    worker.start()
    res.add("celery worker", worker.stop)

    # Warm up: every source polled at least twice (beat running, source_state
    # rows written), then one matching item end to end (templates compiled in
    # at least one pool process). Neither counts in the figures.
    deadline = time.monotonic() + 60
    while True:
        hits = Counter(h.split("?")[0] for h in list(files.hits))
        if len(hits) >= n and min(hits.values()) >= 2:
            break
        if not worker.alive() or time.monotonic() > deadline:
            print(tail(worker.log), file=sys.stderr)
            raise SystemExit("worker did not start polling (log above)")
        time.sleep(0.1)
    warm = Item(0, -1, "bench-warmup", "Kazakhstan tariffs warm-up", "duties on warm-up", "tariff",
                time.time())
    write_feed(www, 0, [warm])
    while not any("bench-warmup" in r["body"] for r in hooks.delivered()):
        if not worker.alive() or time.monotonic() > deadline:
            print(tail(worker.log), file=sys.stderr)
            raise SystemExit("warm-up alert never arrived (log above)")
        time.sleep(0.05)
    print(f"worker ready after {time.monotonic() - t_start:.1f} s (incl. warm-up); publishing ...")
    hits_before = len(files.hits)

    # Publish: item k of feed f at spread * (k + phase_f) / m.
    rng = random.Random(7)
    schedule = sorted(((args.spread * (k + rng.random()) / m if args.spread > 0 else 0.0, f, k)
                       for f in range(n) for k in range(m)))
    live: list[list[Item]] = [[warm] if f == 0 else [] for f in range(n)]
    mark0 = CpuMark.take(worker.proc.pid, redis_proc.proc.pid)
    t0 = time.monotonic()
    i = 0
    while i < len(schedule):
        now = time.monotonic() - t0
        if schedule[i][0] > now:
            time.sleep(min(0.02, schedule[i][0] - now))
            continue
        due = defaultdict(list)
        while i < len(schedule) and schedule[i][0] <= now:
            _, f, k = schedule[i]
            due[f].append(feeds[f][k])
            i += 1
        for f, items in due.items():
            for it in items:
                it.published = time.time()  # for pubDate; overwritten below
            live[f].extend(items)
            write_feed(www, f, live[f])
            stamp = time.time()
            for it in items:
                it.published = stamp
        if not worker.alive():
            break
    t_last_publish = time.monotonic()
    first_pub = min(it.published for items in feeds for it in items)
    last_pub = max(it.published for items in feeds for it in items)
    print(f"published {n * m} items in {last_pub - first_pub:.1f} s; waiting for deliveries "
          f"(timeout {args.timeout:g} s) ...")

    # Wait for every expected delivery (or the timeout), then a little longer
    # to catch duplicates.
    def received_hooks() -> dict[tuple, float]:
        got = {}
        for r in hooks.delivered():
            try:
                body = json.loads(r["body"])
                key = (body["subscription"], body["article"]["id"], hooks.url + r["path"])
            except (ValueError, KeyError, TypeError):
                continue
            got.setdefault(key, r["received_at"])
        return got

    while time.monotonic() - t_last_publish < args.timeout and worker.alive():
        got = received_hooks()
        mails = len(list(mail.directory.glob("*.eml"))) if mail else 0
        if exp_hooks <= set(got) and (not mail or mails >= len(exp_mail) + 1):
            break
        time.sleep(0.1)
    mark1 = CpuMark.take(worker.proc.pid, redis_proc.proc.pid)
    time.sleep(args.settle)
    t_done = time.monotonic()

    # -- results --------------------------------------------------------------
    by_guid = {it.guid: it for items in feeds for it in items}
    records = [r for r in hooks.delivered() if "bench-warmup" not in r["body"]]
    got = received_hooks()
    got.pop(next((k for k in got if k[1] == "bench-warmup"), None), None)
    counts = Counter()
    for r in records:
        body = json.loads(r["body"])
        counts[(body["subscription"], body["article"]["id"], hooks.url + r["path"])] += 1
    dups = {k: c for k, c in counts.items() if c > 1}
    missing = sorted(exp_hooks - set(got))
    unexpected = sorted(set(got) - exp_hooks)
    latencies = [got[k] - by_guid[k[1]].published for k in exp_hooks if k in got]
    last_arrival = max((got[k] for k in exp_hooks if k in got), default=float("nan"))
    window = last_arrival - first_pub

    print()
    print(f"items published:     {n * m} ({n} feeds x {m}), over {last_pub - first_pub:.1f} s")
    print(f"webhooks expected:   {len(exp_hooks)}   received: {len(set(got) & exp_hooks)}   "
          f"missing: {len(missing)}   duplicates: {sum(c - 1 for c in dups.values())}   "
          f"unexpected: {len(unexpected)}")
    if window == window and window > 0:
        print(f"throughput:          {n * m / window:.1f} items/s, {len(latencies) / window:.1f} webhooks/s "
              f"(first publication -> last expected webhook: {window:.2f} s)")
    print(f"latency publish->webhook: {fmt_latency(latencies)}")
    print(f"  poll interval {args.interval:g} s: an item waits 0..{args.interval:g} s for the next poll of its "
          f"feed before anything reads it; that wait is included above")

    mail_lat = []
    if mail:
        import hashlib

        key_of = {}
        for (sub, guid, ch), kind in expected.items():
            if kind == "email":
                raw = "\x1f".join(["news", feed_name(by_guid[guid].feed), guid, sub, ch])
                key_of[hashlib.sha256(raw.encode()).hexdigest()] = (sub, guid, ch)
        seen_mail = Counter()
        for p in mail.directory.glob("*.eml"):
            head = p.read_bytes()[:4000].decode("utf-8", "replace")
            mid = next((ln.split("tulpar.", 1)[1].split("@", 1)[0] for ln in head.splitlines()
                        if ln.lower().startswith("message-id:") and "tulpar." in ln), None)
            key = key_of.get(mid)
            if key is None:
                continue
            seen_mail[key] += 1
            if seen_mail[key] == 1:
                mail_lat.append(p.stat().st_mtime - by_guid[key[1]].published)
        print(f"emails expected:     {len(exp_mail)}   received: {len(seen_mail)}   "
              f"missing: {len(exp_mail - set(seen_mail))}   "
              f"duplicates: {sum(c - 1 for c in seen_mail.values())}")
        print(f"latency publish->email (.eml written): {fmt_latency(mail_lat)}")

    # Where the time went, from the delivery rows (webhooks only).
    rows = [d for d in store.deliveries() if d.item_id != "bench-warmup" and d.channel.startswith("http")]
    split = defaultdict(list)
    for d in rows:
        it = by_guid.get(d.item_id)
        key = (d.subscription, d.item_id, d.channel)
        if it is None or key not in got or d.enqueued_at is None:
            continue
        created, enq = d.created_at.timestamp(), d.enqueued_at.timestamp()
        split["publish -> poll start"].append(created - it.published)
        split["poll start -> enqueued (fetch, parse, classify, render, commit)"].append(enq - created)
        split["enqueued -> webhook received (queue, claim, POST)"].append(got[key] - enq)
    print("split (from delivery rows; clocks are the same machine's):")
    for what, vals in split.items():
        print(f"  {what:66s} {fmt_latency(vals)}")
    statuses = Counter(d.status for d in store.deliveries() if d.item_id != "bench-warmup")
    polls = len(files.hits) - hits_before
    print(f"delivery rows by status: {dict(statuses)}; feed GETs during the run: {polls} "
          f"({polls / max(1e-9, t_done - t0):.1f}/s)")
    for line in cpu_report(mark0, mark1, n * m, len(latencies)):
        print(line)
    if missing:
        print(f"MISSING ({len(missing)}):")
        for k in missing[:50]:
            print("  ", k)
    if dups:
        print(f"DUPLICATES ({len(dups)}):", ", ".join(f"{k[1]}/{k[0]} x{c}" for k, c in list(dups.items())[:20]))
    errors = [ln for ln in tail(worker.log, 10**7).splitlines() if " ERROR" in ln or "Traceback" in ln]
    if errors:
        print(f"worker log: {len(errors)} ERROR/Traceback lines, e.g.: {errors[0][:300]}")
    if args.keep:
        print(f"kept: {tmp} (worker.log, var/tulpar.db)")
    ok = not missing and (not mail or len(seen_mail) == len(exp_mail))
    print("RESULT:", "OK, nothing lost" if ok else "FAILED: deliveries missing")
    return 0 if ok else 1


# -- CPU accounting: the machine may be shared, so say who used the CPUs ------
TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()  # state ppid pgrp session ... utime(11) stime(12) cutime cstime


def group_cpu(pgid: int) -> float:
    """CPU seconds of the processes in a process group (the worker, its pool, beat),
    plus the children they already reaped."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        f = _stat_fields(entry)
        if f and int(f[2]) == pgid:
            total += int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if int(entry) == pgid else 0)
    return total / TCK


def proc_cpu(pid: int | None) -> float:
    f = _stat_fields(pid) if pid else None
    return (int(f[11]) + int(f[12])) / TCK if f else 0.0


def system_busy() -> float:
    """CPU seconds all CPUs spent not idle, machine-wide."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    return (sum(v[:8]) - v[3] - v[4]) / TCK


def cpu_pressure() -> float:
    """Seconds some task waited for a CPU (PSI 'some' total), machine-wide."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


@dataclass
class CpuMark:
    wall: float
    busy: float
    pressure: float
    worker: float
    bench: float
    redis: float

    @classmethod
    def take(cls, worker_pgid: int | None = None, redis_pid: int | None = None) -> "CpuMark":
        return cls(time.monotonic(), system_busy(), cpu_pressure(),
                   group_cpu(worker_pgid) if worker_pgid else 0.0, time.process_time(), proc_cpu(redis_pid))


def cpu_report(a: CpuMark, b: CpuMark, items: int, deliveries: int, with_worker: bool = True) -> list[str]:
    wall = b.wall - a.wall
    busy = b.busy - a.busy
    mine = (b.worker - a.worker) + (b.bench - a.bench) + (b.redis - a.redis)
    lines = [f"CPU over {wall:.1f} s wall ({os.cpu_count()} CPUs = {wall * (os.cpu_count() or 1):.0f} CPU-s): "
             f"machine busy {busy:.1f} CPU-s, of which this benchmark {mine:.1f} "
             f"and other processes {busy - mine:.1f}; tasks waited for a CPU "
             f"{100 * (b.pressure - a.pressure) / wall:.0f}% of the time (PSI some)"]
    if with_worker:
        w = b.worker - a.worker
        lines.append(f"  worker (pool + beat + main) {w:.1f} CPU-s = {1000 * w / items:.1f} CPU-ms per item"
                     + (f", {1000 * w / deliveries:.1f} per webhook" if deliveries else "")
                     + f"; redis {b.redis - a.redis:.1f}; sinks + feed server + publisher {b.bench - a.bench:.1f}")
    return lines


def tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# -- direct: the in-process pipeline ----------------------------------------
def run_direct(args, tmp: Path, res: Resources) -> int:
    from services import config as config_mod
    from services.news import pipeline
    from services.news.classify import Classifier
    from services.delivery.outbox import utcnow
    from services.settings import Settings
    from services.store import Store

    n, m = args.feeds, args.items
    www = tmp / "www"
    www.mkdir()
    (tmp / "var").mkdir()
    files = FileServer(www).start()
    res.add("feed server", files.stop)
    hooks_base = "http://127.0.0.1:9"  # never contacted: no delivery in this mode
    config = tmp / "tulpar.yaml"
    write_config(config, n, files.url, hooks_base, args.interval, args.email)
    feeds = make_items(n, m)
    expected = expected_deliveries(feeds, config)
    settings = Settings().model_copy(update={"allow_private_targets": True, "var_dir": tmp / "var"})
    cfg = config_mod.load(config, settings)

    print(f"machine: {machine()}")
    print(f"direct mode: services.news.pipeline.poll_news over {n} loopback feeds x {m} items "
          f"(fetch, parse, dedupe, classify, route, render, commit); no Redis, no Celery; "
          f"database {'PostgreSQL' if args.database_url else 'SQLite (WAL)'}; "
          f"channels: webhook{' + email' if args.email else ''}; "
          f"{len(expected)} deliveries expected")

    def one_run(profile: bool) -> None:
        run_tmp = Path(tempfile.mkdtemp(dir=tmp))
        (run_tmp / "var").mkdir()
        args_db = database(args, run_tmp, res)
        store = Store(args_db)
        store.create_schema()
        classifier = Classifier(cfg.subscriptions)
        for f in range(n):
            for it in feeds[f]:
                it.published = time.time()
            write_feed(www, f, feeds[f])
        prof = None
        if profile:
            import cProfile

            prof = cProfile.Profile()

        cpu: dict[str, float] = {}

        def round_(label: str) -> tuple[float, int, int, int]:
            t, c = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            fetched = new = ids = 0
            for source in cfg.sources:
                report = pipeline.poll_news(source, classifier, store, settings, utcnow())
                if report.error:
                    raise SystemExit(f"poll failed: {report.error}")
                fetched += report.fetched
                new += report.new
                ids += len(report.delivery_ids)
            if prof:
                prof.disable()
            cpu[label] = time.process_time() - c  # includes the feed server's threads (same process)
            return time.perf_counter() - t, fetched, new, ids

        # A first throwaway poll so imports and template compilation are not
        # in round 1 (a worker pays them once per process).
        warm = pipeline.poll_news(cfg.sources[0].__class__("warm", "feed", cfg.sources[0].url, 1.0),
                                  classifier, store, settings, utcnow())
        assert not warm.error, warm.error
        with store.sessions.begin() as s:  # forget the warm-up
            import sqlalchemy as sa

            s.execute(sa.text("DELETE FROM delivery"))
            s.execute(sa.text("DELETE FROM seen_article"))
            s.execute(sa.text("DELETE FROM source_state"))
        mark0 = CpuMark.take()
        el1, f1, new1, ids1 = round_("all new")
        el2, f2, new2, ids2 = round_("unchanged")
        for f in range(n):  # one new matching item in every feed
            extra = Item(f, m, f"bench-{f:03d}-extra", f"Kazakhstan tariffs extra ({f})",
                         "Duties on steel", "tariff", time.time())
            write_feed(www, f, feeds[f] + [extra])
        el3, f3, new3, ids3 = round_("one new each")
        mark1 = CpuMark.take()
        store.dispose()
        tag = " (under cProfile: slower)" if profile else ""
        c1, c2, c3 = cpu["all new"], cpu["unchanged"], cpu["one new each"]
        print(f"round 1, all new{tag}:   {n} polls, {f1} items, {new1} new, {ids1} deliveries written in "
              f"{el1:.2f} s -> {f1 / el1:.0f} items/s, {n / el1:.1f} polls/s, {1000 * el1 / n:.1f} ms/poll; "
              f"CPU {c1:.2f} s = {1000 * c1 / f1:.2f} CPU-ms/item -> {f1 / c1:.0f} items per CPU-second")
        print(f"round 2, unchanged (304){tag}: {n} polls in {el2:.3f} s -> {1000 * el2 / n:.1f} ms/poll; "
              f"CPU {1000 * c2 / n:.1f} ms/poll")
        print(f"round 3, 1 new item per feed{tag}: {n} polls, {f3} items parsed, {new3} new, {ids3} deliveries "
              f"in {el3:.2f} s -> {1000 * el3 / n:.1f} ms/poll ({f3 / el3:.0f} items parsed/s); "
              f"CPU {1000 * c3 / n:.1f} ms/poll")
        if not profile:
            for line in cpu_report(mark0, mark1, f1 + f3, 0, with_worker=False):
                print(line)
        if not profile and ids1 != len(expected):
            raise SystemExit(f"round 1 wrote {ids1} deliveries, expected {len(expected)}")
        if prof:
            import io
            import pstats

            out = io.StringIO()
            st = pstats.Stats(prof, stream=out)
            stages = {
                "feed.poll (HTTP GET + feedparser + normalise)": ("services/news/feed.py", "poll"),
                "  of which http.fetch": ("services/net/fetch.py", "fetch"),
                "  of which feedparser.parse": ("feedparser/api.py", "parse"),
                "Store.source_state": ("services/store/db.py", "source_state"),
                "Store.unseen (dedupe)": ("services/store/db.py", "unseen"),
                "Classifier.classify": ("services/news/classify.py", "classify"),
                "polling.rendered (route + render)": ("services/polling.py", "rendered"),
                "Store.commit_poll": ("services/store/db.py", "commit_poll"),
                "Settings() construction": ("pydantic_settings/main.py", "__init__"),
            }
            whole = next((v[3] for (fn, _, name), v in st.stats.items()
                          if fn.endswith("services/news/pipeline.py") and name == "poll_news"), None)
            print("profile, cumulative time by stage (all three rounds):")
            for label, (suffix, name) in stages.items():
                cum = sum(v[3] for (fn, _, fname), v in st.stats.items() if fn.endswith(suffix) and fname == name)
                calls = sum(v[1] for (fn, _, fname), v in st.stats.items() if fn.endswith(suffix) and fname == name)
                share = f"{100 * cum / whole:5.1f}%" if whole else ""
                print(f"  {label:48s} {cum:7.3f} s  {share}  ({calls} calls)")
            print(f"  {'poll_news total':48s} {whole or 0:7.3f} s")
            st.sort_stats("cumulative").print_stats(args.profile_top)
            st.sort_stats("tottime").print_stats(args.profile_top)
            text = out.getvalue()
            print(text.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", ""))

    for _ in range(max(1, args.repeat)):
        one_run(False)
    if args.profile:
        one_run(True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feeds", type=int, help="N feeds (default 20; --quick 5)")
    p.add_argument("--items", type=int, help="M items per feed (default 50; --quick 20)")
    p.add_argument("--spread", type=float,
                   help="publish the items over this many seconds (default 20; --quick 5; 0: all at once)")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval of every source, s (default 1)")
    p.add_argument("--concurrency", type=int, default=os.cpu_count() or 2,
                   help="Celery worker processes (default: CPUs)")
    p.add_argument("--email", action="store_true", help="also an email channel on two subscriptions (SMTP sink)")
    p.add_argument("--database-url", default="",
                   help="PostgreSQL URL: runs in a fresh schema there (default: SQLite in a temp dir)")
    p.add_argument("--timeout", type=float, default=90.0, help="wait for deliveries after the last publication, s")
    p.add_argument("--settle", type=float, default=2.0, help="wait after the last delivery for duplicates, s")
    p.add_argument("--sweep-interval", type=float, default=5.0, help="TULPAR_SWEEP_INTERVAL (default 5)")
    p.add_argument("--loglevel", default="INFO", help="worker log level (default INFO, as in production)")
    p.add_argument("--quick", action="store_true", help="5 feeds x 20 items over 5 s (other flags still apply)")
    p.add_argument("--direct", action="store_true", help="in-process poll_news only (no Redis, no Celery)")
    p.add_argument("--profile", action="store_true", help="with --direct: a second run under cProfile")
    p.add_argument("--profile-top", type=int, default=25)
    p.add_argument("--repeat", type=int, default=1,
                   help="with --direct: run the three rounds this many times (fresh database each), "
                        "to see the spread on a busy machine")
    p.add_argument("--keep", action="store_true", help="keep the temp directory (worker log, database)")
    args = p.parse_args(argv)
    defaults = (5, 20, 5.0) if args.quick else (20, 50, 20.0)
    args.feeds = defaults[0] if args.feeds is None else args.feeds
    args.items = defaults[1] if args.items is None else args.items
    args.spread = defaults[2] if args.spread is None else args.spread
    if args.feeds < 1 or args.items < 1:
        p.error("--feeds and --items must be at least 1")

    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    res = Resources()
    tmp = Path(tempfile.mkdtemp(prefix="tulpar-bench-"))
    if not args.keep:
        res.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        return run_direct(args, tmp, res) if args.direct else run_e2e(args, tmp, res)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        res.close()


if __name__ == "__main__":
    sys.exit(main())
