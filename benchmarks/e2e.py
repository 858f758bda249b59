"""Load harness (issue 13): tulpar end to end on real parts, at N sources and M
subscriptions, for a bounded time; prints the latency, startup, memory, queue
and CPU figures and the delivery counts.

    .venv/bin/python benchmarks/e2e.py                                   # 100 sources, 1k subs, 300 s
    .venv/bin/python benchmarks/e2e.py --sources 1000 --subscriptions 10000
    .venv/bin/python benchmarks/e2e.py --sources 1000 --subscriptions 100000 --subscriptions-in database
    .venv/bin/python benchmarks/e2e.py --pools single                    # one worker on all queues
    .venv/bin/python benchmarks/e2e.py --database-url postgresql://postgres@127.0.0.1/test
    .venv/bin/python benchmarks/e2e.py --profile                         # py-spy on the worker too

What runs, all on loopback, in a temp directory:
- one HTTP server serving N RSS feeds from memory (ETag, 304 on If-None-Match).
  Each feed publishes a new item every 30-60 s (uniform), keeps its newest 20,
  and stamps pubDate with the moment of publication. An item names one or two
  "entities" (made-up words) and a few event words; each subscription is a
  query about one entity (terms, AND/OR/NOT, phrases, prefixes, NEAR, title:,
  some country: presets), and the number of entities is chosen so that an item
  matches --matches-per-item subscriptions on average (default 2);
- a webhook receiver recording each POST's arrival time, its `webhook-id`
  (the idempotency key) and which (subscription, article) it carries;
- a private redis-server on a free port (services.local.RedisProcess);
- the Procfile's workers and beat as subprocesses, each in its own process
  group. --pools split (the default, as the Procfile): a poll worker
  `celery -A workers.app worker --loglevel INFO -Q poll --pool prefork
  --concurrency 2 --hostname poll@%h` and a deliver worker `... -Q deliver,sweep
  --concurrency 4 --hostname deliver@%h` (--poll-concurrency,
  --deliver-concurrency; default $TULPAR_POLL_CONCURRENCY /
  $TULPAR_DELIVER_CONCURRENCY as in the Procfile; --poll-pool, --deliver-pool
  to try the other pool);
  --pools single: one worker on all queues, `--concurrency 4`; and
  `celery -A workers.app beat --loglevel INFO --schedule ...`;
- a SQLite file migrated with `tulpar db upgrade`'s code (or a fresh schema in
  the PostgreSQL of --database-url, dropped at the end);
- a config file with N sources (interval --interval, default 30 s) and M
  subscriptions, each with one webhook channel to the receiver
  (`allow_private_targets: true`).

Timeline: start redis, database, workers and beat; once every worker says it
is ready, a few polls are sent straight to the poll queue so that every pool
process of the poll worker has polled (applied the change log) before the
clock starts; then --duration
seconds of publishing; then up to --drain seconds for the remaining expected
webhooks (it ends early when all have arrived), and --settle seconds more for
late duplicates.

What is expected is computed here, independently of the worker's classifier:
every subscription's query is parsed with services.rules and put in a
services.rules.Matcher of our own; each published item is matched as the
worker will see it (title, summary, source, lang "en"). Received is counted
per (subscription, article, channel); duplicates per idempotency key (and per
triple). Exit code 1 if any expected webhook has not arrived by the end of the
drain, any is duplicated, or an unexpected one arrives; the ones that did not
arrive are told apart: item never polled (poll backlog), delivery still in the
outbox (delivery backlog), or truly lost (item seen without a delivery row, or
a delivery marked sent that never arrived).

Figures: latency publish -> webhook (includes the 0..interval wait for the next
poll), poll done -> received (poll done: the worker's "poll SOURCE: ..."
log line of the poll that created the delivery, i.e. the first such line for
the source at or after the delivery's created_at, which is the poll's start),
each worker's ready time and each of its pool processes' first task, the
memory of each worker tree: PSS from /proc/PID/smaps_rollup (every
--pss-every seconds; a shared page counts 1/k in each of its k sharers, so the
sum is what the tree really takes) and RSS (every second; counts a shared page
once per process), and of all workers together,
the longest poll and deliver queues (Redis LLEN, sampled every second), CPU
seconds of every process, and the machine's other load (it may be shared).

--subscriptions-in database stores the subscriptions as tenants'
subscriptions (services.accounts' tables) instead of the config file:
written in bulk in the shape subscriptions.create leaves them, one tenant per
1,000, one confirmed webhook channel each; the workers load them at start
(services/accounts/live.py). While publishing, --changes (default 5) of
them get their query changed through services.accounts.subscriptions.update
(to the same query in parentheses, so what is expected stays the same), and
the table gives the time from each change's commit until every pool process
of the poll worker logged applying it.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import bisect
import email.utils
import hashlib
import heapq
import json
import os
import random
import re
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.local.ports import free_port  # noqa: E402
from services.local.redis_process import ChildProcess, RedisProcess  # noqa: E402

FEED_KEEP = 20  # items a feed keeps (newest first)
TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# -- the news ------------------------------------------------------------------
EVENTS = ["tariff", "sanctions", "pipeline", "drought", "election", "strike", "merger", "default",
          "outage", "flood", "protest", "investment", "license", "audit", "bankruptcy", "dividend",
          "privatisation", "embargo", "earthquake", "inflation", "export", "import", "railway",
          "uranium", "wheat", "copper", "gold", "refinery", "airline", "bond"]
CITIES = ["Almaty", "Astana", "Bishkek", "Osh", "Tashkent", "Samarkand", "Dushanbe", "Khujand",
          "Ashgabat", "Geneva", "Istanbul", "Dubai", "Shanghai", "Frankfurt", "London", "Baku"]
COUNTRIES = ["KZ", "KG", "UZ", "TJ", "TM"]
FILLER = [
    "officials said on {day} that talks would continue next week",
    "analysts expect the decision to weigh on regional markets",
    "the ministry declined to comment on the figures",
    "traders said volumes were thin ahead of the holiday",
    "the company will publish its quarterly report in {month}",
    "local media reported long queues at the border crossing",
    "the central bank kept its key rate unchanged",
    "a spokesperson promised a statement later in the day",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["March", "June", "September", "December"]
_SYL_A = ["b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ch", "sh", "kh"]
_SYL_V = ["a", "o", "u", "e", "i"]


def entity_word(i: int) -> str:
    """A made-up proper name, unique per i, that stems to itself (ends in -n/-r/-l + vowel-free tail)."""
    out = []
    n = i
    for _ in range(3):
        n, r = divmod(n, len(_SYL_A) * len(_SYL_V))
        out.append(_SYL_A[r // len(_SYL_V)] + _SYL_V[r % len(_SYL_V)])
    tail = ["n", "r", "l", "rd", "nt", "lk", "rn", "mb"][n % 8]
    word = "".join(out) + tail + ("" if n < 8 else str(n // 8))
    return word.capitalize() if n < 8 else word


def query_for(j: int, entity: str, rng: random.Random) -> str:
    e = entity.lower()
    ev = rng.sample(EVENTS, 3)
    form = j % 20
    if form < 6:
        return f"{e} AND ({ev[0]} OR {ev[1]})"
    if form < 10:
        return e
    if form < 13:
        return f"title:{e} AND NOT {ev[2]}"
    if form < 15:
        return f'"{e} {ev[0]}" OR ({e} AND {ev[1]}*)'
    if form < 17:
        return f"{e} NEAR/5 {ev[0]}"
    if form < 19:
        return f"{e[:-1]}* AND -{ev[2]}"
    return f"{e} AND country:{COUNTRIES[j % len(COUNTRIES)]}"


@dataclass
class Item:
    feed: int
    seq: int
    guid: str
    title: str
    summary: str
    published: float = 0.0  # wall clock, right after the feed was replaced

    def xml(self) -> str:
        return (f"<item><title>{escape(self.title)}</title><link>http://bench.test/{self.guid}</link>"
                f'<guid isPermaLink="false">{self.guid}</guid>'
                f"<pubDate>{email.utils.formatdate(self.published, usegmt=True)}</pubDate>"
                f"<description>{escape(self.summary)}</description></item>")


def source_name(f: int) -> str:
    return f"wire-{f:04d}"


def make_item(f: int, seq: int, entities: list[str], rng: random.Random) -> Item:
    ents = rng.sample(entities, rng.choice((1, 1, 2))) if entities else []
    evs = rng.sample(EVENTS, 3)
    city = rng.choice(CITIES)
    title = f"{ents[0] if ents else city} {evs[0]} talks in {city}"
    parts = [f"The {evs[1]} and {evs[2]} were on the agenda",
             rng.choice(FILLER).format(day=rng.choice(DAYS), month=rng.choice(MONTHS))]
    if len(ents) > 1:
        parts.insert(1, f"{ents[1]} also took part")
    summary = "; ".join(parts) + f" ({source_name(f)} #{seq})."
    return Item(f, seq, f"{source_name(f)}-{seq:05d}", f"{title} ({seq})", summary)


class Subs:
    """The generated subscriptions and our own index of them (services.rules)."""

    def __init__(self, m: int, n_entities: int, seed: int):
        from services import rules

        rng = random.Random(seed)
        self.entities = [entity_word(i) for i in range(n_entities)]
        self.queries = [query_for(j, self.entities[j % n_entities], rng) for j in range(m)]
        self.names = [f"sub-{j:06d}" for j in range(m)]
        self.matcher = rules.Matcher()
        for name, q in zip(self.names, self.queries):
            self.matcher.add(name, rules.parse(q))

    def match(self, item: Item) -> list[str]:
        from services import rules

        doc = rules.Document(item.title, item.summary, source_name(item.feed), "en")
        return sorted(self.matcher.match(doc))


def calibrate(m: int, target: float, seed: int) -> tuple[Subs, float]:
    """Entities such that an item matches about `target` subscriptions."""
    probe_n = max(1, m)  # one subscription per entity: matches per item = matches of one entity
    probe = Subs(m, probe_n, seed)
    rng = random.Random(seed + 1)
    sample = [make_item(0, k, probe.entities, rng) for k in range(400)]
    per_item = statistics.fmean(len(probe.match(it)) for it in sample)
    n_entities = max(1, min(m, round(m * per_item / target))) if per_item else m
    subs = Subs(m, n_entities, seed)
    rng = random.Random(seed + 2)
    sample = [make_item(0, k, subs.entities, rng) for k in range(400)]
    return subs, statistics.fmean(len(subs.match(it)) for it in sample)


# -- the feed server -------------------------------------------------------------
RSS_HEAD = ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            "<title>{name}</title><link>http://bench.test/{name}/</link>"
            "<description>tulpar load harness</description><language>en</language>")


class Feeds:
    def __init__(self, n: int):
        self.n = n
        self.items: list[list[Item]] = [[] for _ in range(n)]
        self.bodies: list[tuple[bytes, str]] = []
        self.lock = threading.Lock()
        self.gets = 0
        self.not_modified = 0
        for f in range(n):
            self.bodies.append(self._body(f))

    def _body(self, f: int) -> tuple[bytes, str]:
        xml = (RSS_HEAD.format(name=source_name(f)) + "".join(i.xml() for i in reversed(self.items[f]))
               + "</channel></rss>")
        data = xml.encode("utf-8")
        return data, '"' + hashlib.sha1(data).hexdigest() + '"'

    def publish(self, item: Item) -> None:
        f = item.feed
        item.published = time.time()
        items = self.items[f] + [item]
        self.items[f] = items[-FEED_KEEP:]
        body = self._body(f)
        with self.lock:
            self.bodies[f] = body
        item.published = time.time()  # the moment the poller can see it


class _FeedHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        feeds: Feeds = self.server.feeds
        m = re.fullmatch(r"/feeds/(\d+)\.xml", self.path.split("?", 1)[0])
        if not m or int(m.group(1)) >= feeds.n:
            self.send_error(404)
            return
        with feeds.lock:
            body, etag = feeds.bodies[int(m.group(1))]
            feeds.gets += 1
        if self.headers.get("If-None-Match") == etag:
            with feeds.lock:
                feeds.not_modified += 1
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)


# -- the webhook receiver ----------------------------------------------------------
@dataclass
class Received:
    at: float
    key: str
    path: str
    body: bytes


class _HookHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        at = time.time()
        key = self.headers.get("Idempotency-Key") or self.headers.get("webhook-id") or ""
        self.server.received.append(Received(at, key, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(handler, **attrs) -> tuple[ThreadingHTTPServer, str]:
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    httpd.request_queue_size = 1024
    for k, v in attrs.items():
        setattr(httpd, k, v)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{port}"


# -- processes, /proc, cleanup -------------------------------------------------------
class Resources:
    """Everything started, stopped in reverse order exactly once."""

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
            except Exception as exc:
                print(f"cleanup: {what}: {exc}", file=sys.stderr)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def proc_stat(pid: int) -> tuple[int, int, float, int] | None:
    """(ppid, pgrp, cpu seconds, rss bytes) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    f = raw.rsplit(")", 1)[1].split()
    return int(f[1]), int(f[2]), (int(f[11]) + int(f[12])) / TCK, int(statm[1]) * PAGE


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == pgid:
                out.append(int(entry))
    return out


def system_busy() -> float:
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / TCK


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pss(pid: int) -> int | None:
    """Proportional set size, bytes (/proc/PID/smaps_rollup): a page shared by
    k processes counts 1/k in each, so a tree's sum is what it really takes
    (RSS counts a shared page once per process)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class ProcInfo:
    role: str
    cpu: float = 0.0
    rss_max: int = 0
    pss_max: int = 0
    first_seen: float = 0.0


class Sampler(threading.Thread):
    """Every second: RSS and CPU of the workers', beat's and redis's processes,
    and the Redis queue lengths; every --pss-every samples, the PSS of each
    worker tree (parent + pool processes)."""

    def __init__(self, workers: list[tuple[str, ChildProcess]], beat: ChildProcess, redis_proc: RedisProcess,
                 every: float = 1.0, pss_every: int = 5):
        super().__init__(daemon=True)
        import redis

        self.workers, self.beat, self.redis_proc, self.every = workers, beat, redis_proc, every
        self.pss_every = pss_every
        self.n = 0
        self.client = redis.Redis(host=redis_proc.host, port=redis_proc.port, socket_timeout=2)
        self.procs: dict[int, ProcInfo] = {}
        # Per worker (its label): the largest sum of its pool processes' RSS,
        # of its whole tree's RSS, and of its whole tree's PSS.
        self.children_rss_max: dict[str, int] = defaultdict(int)
        self.tree_rss_max: dict[str, int] = defaultdict(int)
        self.tree_pss_max: dict[str, int] = defaultdict(int)
        self.all_pss_max = 0  # the largest PSS of all worker trees together (same sample)
        self.all_rss_max = 0
        self.queue_max = {"poll": 0, "deliver": 0, "sweep": 0}
        self.series: list[tuple[float, int, int, int]] = []  # (t, poll, deliver, workers' PSS or RSS)
        self.stop_event = threading.Event()
        self.phase = "start"
        self.queue_max_by_phase: dict[str, dict[str, int]] = defaultdict(
            lambda: {"poll": 0, "deliver": 0, "sweep": 0})
        self._lock = threading.Lock()

    def sample(self, force_pss: bool = False) -> None:
        with self._lock:
            self._sample(force_pss)

    def _sample(self, force_pss: bool = False) -> None:
        now = time.time()
        with_pss = force_pss or self.n % self.pss_every == 0
        self.n += 1
        all_pss = all_rss = 0
        for leader, role in [(w, label) for label, w in self.workers] + [(self.beat, "beat")]:
            if leader.proc is None:
                continue
            children_rss = tree_rss = tree_pss = 0
            for pid in group_members(leader.proc.pid):
                st = proc_stat(pid)
                if st is None:
                    continue
                info = self.procs.get(pid)
                if info is None:
                    r = role if pid == leader.proc.pid else (f"{role} child" if st[0] == leader.proc.pid
                                                             else f"{role} other")
                    info = self.procs[pid] = ProcInfo(r, first_seen=now)
                info.cpu = st[2]
                info.rss_max = max(info.rss_max, st[3])
                tree_rss += st[3]
                if info.role == f"{role} child":
                    children_rss += st[3]
                if with_pss and role != "beat":
                    v = pss(pid) or 0
                    info.pss_max = max(info.pss_max, v)
                    tree_pss += v
            if role == "beat":
                continue
            self.children_rss_max[role] = max(self.children_rss_max[role], children_rss)
            self.tree_rss_max[role] = max(self.tree_rss_max[role], tree_rss)
            all_rss += tree_rss
            if with_pss:
                self.tree_pss_max[role] = max(self.tree_pss_max[role], tree_pss)
                all_pss += tree_pss
        self.all_rss_max = max(self.all_rss_max, all_rss)
        if with_pss:
            self.all_pss_max = max(self.all_pss_max, all_pss)
        if self.redis_proc.proc is not None:
            st = proc_stat(self.redis_proc.proc.pid)
            if st:
                info = self.procs.setdefault(self.redis_proc.proc.pid, ProcInfo("redis-server", first_seen=now))
                info.cpu, info.rss_max = st[2], max(info.rss_max, st[3])
        try:
            pipe = self.client.pipeline()
            for q in ("poll", "deliver", "sweep"):
                pipe.llen(q)
            poll, deliver, sweep = pipe.execute()
        except Exception:
            poll = deliver = sweep = -1
        qm = self.queue_max_by_phase[self.phase]
        for q, v in (("poll", poll), ("deliver", deliver), ("sweep", sweep)):
            self.queue_max[q] = max(self.queue_max[q], v)
            qm[q] = max(qm[q], v)
        self.series.append((now, poll, deliver, all_pss if with_pss else -1))

    def run(self) -> None:
        while not self.stop_event.wait(self.every):
            try:
                self.sample()
            except Exception as exc:  # keep sampling
                print(f"sampler: {exc}", file=sys.stderr)


# -- worker log ----------------------------------------------------------------------
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): (\w+)/([\w-]+)\] (.*)$")
POLL_LINE = re.compile(r"^poll (\S+): (\d+) items, (\d+) new, (\d+) matches, (\d+) deliveries queued")
READY_LINE = re.compile(r"^\S+@\S+ ready\.$")
DONE_LINE = re.compile(r"^Task (\S+)\[[^\]]+\] succeeded in ([\d.e-]+)s")


def log_time(stamp: str) -> float:
    # The workers run with TZ=UTC, so their asctime is UTC.
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=timezone.utc).timestamp()


@dataclass
class WorkerLog:
    ready_at: float | None = None
    first_task: dict[str, tuple[float, float, str]] = field(default_factory=dict)  # process -> (end, secs, task)
    poll_done: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # source -> times
    task_secs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)
    sweeps: int = 0
    swept: int = 0


def read_worker_log(path: Path) -> WorkerLog:
    out = WorkerLog()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            if "Traceback" in line:
                out.errors.append(line)
            continue
        stamp, level, process, msg = m.groups()
        if level in ("ERROR", "CRITICAL"):
            out.errors.append(line)
        elif level == "WARNING":
            out.warnings[re.sub(r"\d+", "N", msg)[:120]] += 1
        if out.ready_at is None and READY_LINE.match(msg):
            out.ready_at = log_time(stamp)
        if (p := POLL_LINE.match(msg)) and int(p.group(3)) > 0:
            out.poll_done[p.group(1)].append(log_time(stamp))
        elif d := DONE_LINE.match(msg):
            secs = float(d.group(2))
            out.task_secs[d.group(1)].append(secs)
            if process not in out.first_task:
                out.first_task[process] = (log_time(stamp), secs, d.group(1))
        elif msg.startswith("sweep: enqueued"):
            out.sweeps += 1
            out.swept += int(re.search(r"\d+", msg).group())
    for times in out.poll_done.values():
        times.sort()
    return out


def merge_logs(logs: list[WorkerLog]) -> WorkerLog:
    """The workers' logs as one (polls, tasks, sweeps, errors); ready_at and
    first_task stay per worker."""
    out = WorkerLog()
    for lg in logs:
        for src, times in lg.poll_done.items():
            out.poll_done[src] += times
        for task, secs in lg.task_secs.items():
            out.task_secs[task] += secs
        out.errors += lg.errors
        out.warnings.update(lg.warnings)
        out.sweeps += lg.sweeps
        out.swept += lg.swept
    for times in out.poll_done.values():
        times.sort()
    return out


# -- the pools -----------------------------------------------------------------------------
def pools(args) -> list[tuple[str, str, int, str, str]]:
    """(label, -Q, --concurrency, --hostname name, --pool) per worker: `split`
    is the Procfile's poll and deliver lines, `single` one worker on all queues."""
    if args.pools == "split":
        return [("poll", "poll", args.poll_concurrency, "poll", args.poll_pool),
                ("deliver", "deliver,sweep", args.deliver_concurrency, "deliver", args.deliver_pool)]
    return [("worker", "", args.concurrency, "", "prefork")]


def pool_of(args, label: str) -> str:
    for lb, queues, conc, _, pool in pools(args):
        if lb == label:
            recycle = (f" --max-tasks-per-child {args.poll_max_tasks}"
                       if label == "poll" and pool == "prefork" and args.poll_max_tasks else "")
            return f"-Q {queues or 'all'} --pool {pool} --concurrency {conc}{recycle}"
    return "?"


def pool_processes(pool: str, concurrency: int) -> int:
    """How many processes of a worker run its tasks: a threads pool runs
    them all in the worker's own process."""
    return 1 if pool == "threads" else concurrency


def runs_tasks(process: str) -> bool:
    """Whether a log line's process name is one that runs tasks: a prefork
    pool's processes, or the one process of a threads pool."""
    return process.startswith("ForkPoolWorker") or process == "MainProcess"


def pools_text(args) -> str:
    return " + ".join(f"{label} worker ({pool_of(args, label)})" for label, *_ in pools(args))


# -- database ---------------------------------------------------------------------------
def database(args, tmp: Path, res: Resources) -> str:
    """A fresh, migrated database: a SQLite file, or a new schema in the
    PostgreSQL of --database-url (dropped at the end)."""
    from services.store import schema as schema_mod

    if not args.database_url:
        url = f"sqlite:///{tmp / 'var' / 'tulpar.db'}"
    else:
        import sqlalchemy as sa

        from services.store.db import _normalise_url

        base = _normalise_url(args.database_url)
        name = "e2e_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(base)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))

        def drop():
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
            engine.dispose()

        res.add("postgres schema", drop)
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{name}"
    schema_mod.upgrade(url)
    return url


def store_in_database(url: str, subs: Subs, hook_base: str) -> float:
    """The subscriptions as tenants' subscriptions, in the shape the API
    stores them (services/accounts: tenants.create, channels.create_webhook,
    subscriptions.create): one tenant per 1,000 subscriptions, one confirmed
    webhook channel per subscription (format json, its own whsec_ secret),
    the subscription and its subscription_channel link (position 0). Written
    in bulk -- Core inserts of 10,000 rows, one transaction -- since one API
    call per subscription takes hours at 100k. No change-log rows: the
    workers load everything at start, and the log only tells them what
    changed since. Each query and target is checked as the API checks them.
    Returns the seconds it took."""
    from sqlalchemy import insert

    from services.accounts import ids
    from services.accounts import subscriptions as api_subs
    from services.accounts import tenants as api_tenants
    from services.delivery import channels as delivery_channels
    from services.settings import Settings
    from services.store import Store
    from services.store.models import Channel, ChannelType, SubscriptionChannel, Tenant, TenantSubscription

    started = time.perf_counter()
    settings = Settings().model_copy(update={"allow_private_targets": True})
    now = datetime.now(timezone.utc)
    tenant_rows, channel_rows, sub_rows, link_rows = [], [], [], []
    tenant_id = ""
    for j, (name, query) in enumerate(zip(subs.names, subs.queries)):
        if j % 1000 == 0:
            tenant_id = ids.new_id("tn")
            tenant_rows.append({"id": tenant_id, "name": api_tenants.check_name(f"e2e-{j // 1000:03d}"),
                                "key_hash": ids.digest(ids.new_api_key()), "created_at": now})
        target = f"{hook_base}/h/{j}"
        delivery_channels.validate_target(target, settings)
        channel_id, sub_id = ids.new_id("ch"), ids.new_id("sub")
        channel_rows.append({"id": channel_id, "tenant_id": tenant_id, "type": ChannelType.WEBHOOK,
                             "target": target, "format": "json", "secret": ids.new_webhook_secret(),
                             "confirmed_at": now, "confirm_token_hash": None, "created_at": now})
        sub_rows.append({"id": sub_id, "tenant_id": tenant_id, "name": api_subs.check_name(name),
                         "query": api_subs.check_query(query), "fx": None, "paused": False,
                         "created_at": now, "updated_at": now})
        link_rows.append({"subscription_id": sub_id, "channel_id": channel_id, "position": 0})
    store = Store(url)
    chunk = 10_000
    try:
        with store.sessions.begin() as s:
            for model, rows in ((Tenant, tenant_rows), (Channel, channel_rows), (TenantSubscription, sub_rows),
                                (SubscriptionChannel, link_rows)):
                for i in range(0, len(rows), chunk):
                    s.execute(insert(model), rows[i:i + chunk])
    finally:
        store.dispose()
    return time.perf_counter() - started


class Changer(threading.Thread):
    """--changes: while publishing, change a subscription's query through
    services.accounts.subscriptions.update (as the API does) to an equivalent
    one (the query in parentheses: what the harness expects stays the same),
    at evenly spaced moments; `done` holds (wall time committed, id)."""

    def __init__(self, url: str, subs: Subs, count: int, duration: float, t0: float):
        super().__init__(daemon=True)
        self.url, self.subs, self.count, self.duration, self.t0 = url, subs, count, duration, t0
        self.done: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        from sqlalchemy import select

        from services.accounts import subscriptions as api_subs
        from services.store import Store
        from services.store.models import TenantSubscription

        store = Store(self.url)
        rng = random.Random(99)
        try:
            for k in range(self.count):
                at = self.t0 + self.duration * (k + 1) / (self.count + 1)
                if self.stop_event.wait(max(0.0, at - time.monotonic())):
                    return
                j = rng.randrange(len(self.subs.names))
                try:
                    with store.sessions() as s:
                        sid, tid = s.execute(select(TenantSubscription.id, TenantSubscription.tenant_id)
                                             .where(TenantSubscription.name == self.subs.names[j])).one()
                    api_subs.update(store, tid, sid, datetime.now(timezone.utc),
                                    query=f"({self.subs.queries[j]})")
                    self.done.append((time.time(), sid))
                except Exception as exc:  # report, keep going
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            store.dispose()


def change_applied(log: Path, done: list[tuple[float, str]], threads: bool = False) -> list[tuple[float, float]]:
    """Per change: seconds from its commit until the first and until the last
    of the poll worker's pool processes logged applying it (nan: not all did).
    "All" are the pool processes alive across the change (logging before and
    after it): under --max-tasks-per-child a process that starts later loads
    the change with the rest of the log, and one that ends first never polls
    again; with no recycling that is every pool process."""
    lines = []
    seen: dict[str, list[float]] = {}  # process -> [first, last] time it logged
    for line in tail(log, 10 ** 9).splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        t, proc = log_time(m.group(1)), m.group(3)
        # A prefork parent (MainProcess) logs too, but never polls.
        if runs_tasks(proc) and (threads or proc != "MainProcess"):
            span = seen.setdefault(proc, [t, t])
            span[1] = t
        if m.group(4).startswith("subscriptions: ") and " changed (" in m.group(4):
            lines.append((t, proc, m.group(4)))
    out = []
    for at, sid in done:
        first: dict[str, float] = {}
        for t, proc, msg in lines:
            if sid in msg and runs_tasks(proc) and t >= at - 0.002:
                first.setdefault(proc, t)
        across = [proc for proc, (t0, t1) in seen.items() if t0 < at < t1]
        everyone = bool(across) and all(proc in first for proc in across)
        out.append((min(first.values()) - at if first else float("nan"),
                    max(first[proc] for proc in across) - at if everyone else float("nan")))
    return out


def write_config(path: Path, n: int, feed_base: str, interval: float, subs: Subs | None,
                 hook_base: str) -> None:
    lines = ["allow_private_targets: true", "sources:"]
    for f in range(n):
        lines += [f"  - name: {source_name(f)}", "    kind: feed", f"    url: {feed_base}/feeds/{f}.xml",
                  f"    interval: {interval:g}s"]
    lines.append("subscriptions:" if subs else "subscriptions: []")
    for j, (name, query) in enumerate(zip(subs.names, subs.queries) if subs else ()):
        lines += [f"  - name: {name}", f"    query: {json.dumps(query)}",
                  f"    channels: [{hook_base}/h/{j}]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- figures -----------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


def p50_99(values: list[float], unit: str = "s") -> str:
    if not values:
        return "n/a"
    fmt = (lambda v: f"{v:.2f}") if pct(values, 99) < 10 else (lambda v: f"{v:.1f}")
    return f"{fmt(pct(values, 50))} / {fmt(pct(values, 99))} {unit} (max {fmt(max(values))}, n={len(values)})"


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def machine() -> str:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1e6
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (f"{os.cpu_count()} CPUs ({model}), {mem:.0f} GB RAM, Python {sys.version.split()[0]}; "
            f"load average {load} at start; code {revision()}")


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


def tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# -- profile -------------------------------------------------------------------------------
def pyspy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


def start_profile(worker_pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    exe = pyspy()
    if not exe:
        print("profile: py-spy not found (.venv/bin/pip install py-spy)", file=sys.stderr)
        return None
    return subprocess.Popen([exe, "record", "--pid", str(worker_pid), "--subprocesses", "--format", "raw",
                             "--rate", "50", "--duration", str(int(seconds)), "--nonblocking", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "w"),
                            start_new_session=True)


def summarize_profile(path: Path, top: int = 18) -> list[str]:
    """py-spy's raw (collapsed) stacks -> the heaviest frames, self and inclusive."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return [f"profile: nothing recorded ({path})"]
    total = 0
    own: Counter = Counter()
    incl: Counter = Counter()
    idle = 0
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        n = int(n)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        names = [re.sub(r"\s*\(([^)]*?)(?:site-packages/|/work/main/)?([^/)]*/[^/)]*):\d+\)$", r" (\2)", f)
                 for f in frames]
        leaf = names[-1]
        if any(w in leaf for w in ("select (", "poll (", "epoll", "wait (", "_poll (", "sleep (", "recv (",
                                   "read (", "accept (")) and "services/" not in leaf:
            idle += n
        own[leaf] += n
        for name in set(names):
            incl[name] += n
    if not total:
        return ["profile: empty"]
    busy = total - idle
    out = [f"py-spy record, all worker processes: {total} samples at 50/s; waiting in select/poll/read/sleep "
           f"{100 * idle / total:.0f}%, on CPU or in other calls {100 * busy / total:.0f}%",
           "  heaviest frames, inclusive (share of non-waiting samples):"]
    ours = [(k, v) for k, v in incl.most_common() if ("services/" in k or "workers/" in k or "sqlalchemy" in k
                                                       or "feedparser" in k or "jinja2" in k or "kombu" in k
                                                       or "yaml" in k or "celery/app/trace" in k)]
    for k, v in ours[:top]:
        out.append(f"    {100 * v / max(1, busy):5.1f}%  {k}")
    out.append("  heaviest frames, self:")
    for k, v in own.most_common(top):
        out.append(f"    {100 * v / total:5.1f}% of all  {k}")
    return out


# -- the run ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", type=int, default=100, help="N feeds (default 100)")
    p.add_argument("--subscriptions", type=int, default=1000, help="M subscriptions (default 1000)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of publishing (default 300)")
    p.add_argument("--drain", type=float, default=150.0,
                   help="after publishing, wait up to this long for the expected webhooks (default 150)")
    p.add_argument("--settle", type=float, default=5.0, help="then this long for late duplicates (default 5)")
    p.add_argument("--interval", type=float, default=30.0, help="poll interval of every source, s (default 30)")
    p.add_argument("--publish-every", default="30,60", help="a feed's next item after U(a,b) seconds (default 30,60)")
    p.add_argument("--matches-per-item", type=float, default=2.0,
                   help="mean subscriptions an item matches (default 2)")
    p.add_argument("--pools", choices=("split", "single"), default="split",
                   help="split (default): the Procfile's two workers, `-Q poll --concurrency "
                        "--poll-concurrency` and `-Q deliver,sweep --concurrency --deliver-concurrency`; "
                        "single: one worker on all queues, --concurrency (the harness before issue 13's "
                        "separate pools)")
    p.add_argument("--poll-concurrency", type=int, default=int(os.environ.get("TULPAR_POLL_CONCURRENCY") or 2),
                   help="the poll worker's pool (Procfile: ${TULPAR_POLL_CONCURRENCY:-2})")
    p.add_argument("--poll-pool", choices=("threads", "prefork"),
                   default=os.environ.get("TULPAR_POLL_POOL") or "prefork",
                   help="the poll worker's --pool (Procfile: ${TULPAR_POLL_POOL:-prefork})")
    p.add_argument("--poll-max-tasks", type=int, default=int(os.environ.get("TULPAR_POLL_MAX_TASKS") or 500),
                   help="the poll worker's --max-tasks-per-child under prefork, 0 for none "
                        "(Procfile: ${TULPAR_POLL_MAX_TASKS:-500})")
    p.add_argument("--deliver-concurrency", type=int,
                   default=int(os.environ.get("TULPAR_DELIVER_CONCURRENCY") or 4),
                   help="the deliver worker's pool (Procfile: ${TULPAR_DELIVER_CONCURRENCY:-4})")
    p.add_argument("--deliver-pool", choices=("threads", "prefork"), default="prefork",
                   help="the deliver worker's --pool (Procfile: prefork)")
    p.add_argument("--concurrency", type=int, default=4, help="--pools single: the one worker's pool (default 4)")
    p.add_argument("--pss-every", type=int, default=5,
                   help="read the workers' PSS (/proc/PID/smaps_rollup) every this many 1-s samples (default 5)")
    p.add_argument("--database-url", default="",
                   help="PostgreSQL URL: runs in a fresh schema there (default: SQLite in the temp dir)")
    p.add_argument("--subscriptions-in", choices=("config", "database"), default="config",
                   help="where the subscriptions live: the config file, or tenants' subscriptions "
                        "(services.accounts' tables, written in bulk in the API's shape)")
    p.add_argument("--changes", type=int, default=5,
                   help="--subscriptions-in database: this many query changes through the API's function "
                        "while publishing, timed until every poll pool process applied each (default 5)")
    p.add_argument("--ready-timeout", type=float, default=300.0,
                   help="give up if the worker and its pool are not ready after this long (default 300)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy record all worker processes over the middle of the publishing window")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database, profile)")
    args = p.parse_args(argv)
    lo, hi = (float(x) for x in args.publish_every.split(","))
    if args.sources < 1 or args.subscriptions < 1:
        p.error("--sources and --subscriptions must be at least 1")

    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    res = Resources()
    tmp = Path(tempfile.mkdtemp(prefix="tulpar-e2e-"))
    if not args.keep:
        res.add("temp dir", lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        return run(args, lo, hi, tmp, res)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        res.close()


def run(args, lo: float, hi: float, tmp: Path, res: Resources) -> int:
    n, m = args.sources, args.subscriptions
    (tmp / "var").mkdir()
    print(f"machine: {machine()}")
    t = time.monotonic()
    subs, per_item = calibrate(m, args.matches_per_item, args.seed)
    print(f"setup: {n} sources polled every {args.interval:g} s, each publishing an item every "
          f"{lo:g}-{hi:g} s; {m} subscriptions over {len(subs.entities)} entities "
          f"(an item matches {per_item:.2f} on average; sample of 400); subscriptions in the "
          f"{args.subscriptions_in}; database {'PostgreSQL' if args.database_url else 'SQLite'}; "
          f"{pools_text(args)} + beat; generated in {time.monotonic() - t:.1f} s")

    feeds = Feeds(n)
    feed_httpd, feed_base = serve(_FeedHandler, feeds=feeds)
    res.add("feed server", lambda: (feed_httpd.shutdown(), feed_httpd.server_close()))
    received: list[Received] = []
    hook_httpd, hook_base = serve(_HookHandler, received=received)
    res.add("webhook receiver", lambda: (hook_httpd.shutdown(), hook_httpd.server_close()))

    db_url = database(args, tmp, res)
    config = tmp / "tulpar.yaml"
    if args.subscriptions_in == "database":
        print(f"database: {m:,} subscriptions written in bulk in {store_in_database(db_url, subs, hook_base):.1f} s")
        write_config(config, n, feed_base, args.interval, None, hook_base)
    else:
        write_config(config, n, feed_base, args.interval, subs, hook_base)
    print(f"config: {config.stat().st_size / 1e6:.1f} MB")

    redis_proc = RedisProcess(tmp / "redis").start()
    res.add("redis-server", redis_proc.stop)
    env = {**os.environ, "REDIS_URL": redis_proc.url, "TULPAR_CONFIG": str(config),
           "TULPAR_VAR_DIR": str(tmp / "var"), "DATABASE_URL": db_url, "TZ": "UTC",
           "TULPAR_POLL_CONCURRENCY": str(args.poll_concurrency),
           "TULPAR_DELIVER_CONCURRENCY": str(args.deliver_concurrency),
           # Signed, as in production (an HMAC per webhook).
           "TULPAR_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"e2e-load-harness-secret-32-bytes").decode(),
           "TULPAR_SMTP_HOST": "127.0.0.1", "TULPAR_SMTP_PORT": "9"}
    celery = [sys.executable, "-m", "celery", "-A", "workers.app"]
    # The Procfile's commands: one worker per pool, and beat.
    workers: list[tuple[str, ChildProcess]] = []
    poll_worker = None  # the worker that takes the poll queue
    for label, queues, conc, host, pool in pools(args):
        cmd = celery + ["worker", "--loglevel", "INFO"] + (["-Q", queues] if queues else []) \
            + ["--pool", pool, "--concurrency", str(conc)] + (["--hostname", f"{host}@%h"] if host else [])
        if label == "poll" and pool == "prefork" and args.poll_max_tasks:
            cmd += ["--max-tasks-per-child", str(args.poll_max_tasks)]
        w = ChildProcess(label, cmd, tmp / f"{label}.log", env=env, cwd=ROOT)
        workers.append((label, w))
        if not queues or "poll" in queues.split(","):
            poll_worker = (label, w, pool_processes(pool, conc))
    beat = ChildProcess("beat", celery + ["beat", "--loglevel", "INFO", "--schedule",
                                          str(tmp / "var" / "celerybeat-schedule")],
                        tmp / "beat.log", env=env, cwd=ROOT)
    sampler = Sampler(workers, beat, redis_proc, pss_every=args.pss_every)

    t_start = time.time()
    for label, w in workers:
        w.start()
        res.add(f"celery {label}", lambda w=w: w.stop(grace=15))
    beat.start()
    res.add("celery beat", lambda: beat.stop(grace=10))
    res.add("sampler", sampler.stop_event.set)
    sampler.start()

    def alive() -> bool:
        return all(w.exit_code() is None for _, w in workers) and beat.exit_code() is None

    def fail(msg: str) -> SystemExit:
        for label, w in workers:
            print(f"--- {label} log (tail) ---\n{tail(w.log)}", file=sys.stderr)
        print(f"--- beat log (tail) ---\n{tail(beat.log)}", file=sys.stderr)
        return SystemExit(f"{msg} (logs above)")

    # Ready: each worker's "NAME@HOST ready." line, then every pool process
    # of the poll worker has run a task (a few polls sent straight to the
    # queue). A deliver-only worker's pool processes load nothing; their
    # first deliveries come with the first matches.
    deadline = time.monotonic() + args.ready_timeout
    while any(read_worker_log(w.log).ready_at is None for _, w in workers):
        if not alive() or time.monotonic() > deadline:
            raise fail("a worker did not become ready")
        time.sleep(0.2)
    from services.delivery.queue import Queue

    p_label, p_worker, p_conc = poll_worker
    q = Queue(redis_proc.url)
    q.poll([source_name(f % n) for f in range(2 * p_conc)])
    q.close()
    while len([k for k in read_worker_log(p_worker.log).first_task if runs_tasks(k)]) < p_conc:
        if not alive() or time.monotonic() > deadline:
            raise fail("the poll pool's processes did not all run a task")
        time.sleep(0.2)
    t_warm = time.time()
    readies = "; ".join(f"{label} {read_worker_log(w.log).ready_at - t_start:.1f} s" for label, w in workers)
    print(f"worker ready after start: {readies}; every {p_label} pool process ran a poll "
          f"{t_warm - t_start:.1f} s after start; publishing for {args.duration:g} s ...")
    sampler.sample(force_pss=True)
    mem_warm = {label: sampler.tree_pss_max.get(label, 0) for label, _ in workers}

    # Publish: each feed's next item after U(lo, hi) s; the first within U(0, hi).
    rng = random.Random(args.seed + 3)
    heap = [(rng.uniform(0, hi), f) for f in range(n)]
    heapq.heapify(heap)
    seq = [0] * n
    published: list[Item] = []
    expected: dict[tuple[str, str, str], float] = {}  # (sub, guid, channel path) -> published
    sampler.phase = "publishing"
    busy0 = system_busy()
    cpu_marks0 = {pid: info.cpu for pid, info in sampler.procs.items()}
    t0 = time.monotonic()
    prof_procs: list[tuple[str, subprocess.Popen, Path]] = []
    prof_started = False
    prof_at = args.duration / 3
    changer = None
    if args.changes and args.subscriptions_in == "database":
        changer = Changer(db_url, subs, args.changes, args.duration, t0)
        changer.start()
        res.add("changer", changer.stop_event.set)
    while heap and alive():
        due, f = heap[0]
        now = time.monotonic() - t0
        if args.profile and not prof_started and now >= prof_at:
            prof_started = True
            for label, w in workers + [("beat", beat)]:
                out = tmp / f"profile-{label}.txt"
                pp = start_profile(w.proc.pid, min(90.0, args.duration / 2), out)
                if pp is not None:
                    prof_procs.append((label, pp, out))
                    res.add(f"py-spy {label}", lambda pp=pp: pp.poll() is None and os.killpg(pp.pid, signal.SIGKILL))
        if due >= args.duration:
            break
        if due > now:
            time.sleep(min(0.05, due - now))
            continue
        heapq.heapreplace(heap, (due + rng.uniform(lo, hi), f))
        item = make_item(f, seq[f], subs.entities, rng)
        seq[f] += 1
        feeds.publish(item)
        published.append(item)
        for name in subs.match(item):
            expected[(name, item.guid, f"/h/{int(name[4:])}")] = item.published
    t_pub_end = time.time()
    print(f"published {len(published)} items ({len(published) / args.duration:.1f}/s); "
          f"{len(expected)} webhooks expected; draining (up to {args.drain:g} s) ...")

    # Drain: until every expected webhook arrived, or --drain.
    sampler.phase = "draining"

    def keys_of(recs: list[Received]) -> list[tuple[str, str, str]]:
        out = []
        for r in recs:
            try:
                body = json.loads(r.body)
                out.append((body["subscription"], body["article"]["id"], r.path))
            except (ValueError, KeyError, TypeError):
                out.append(("?", "?", r.path))
        return out

    seen: set = set()
    done_upto = 0
    drain_end = time.monotonic() + args.drain
    while time.monotonic() < drain_end and alive():
        snapshot = received[done_upto:]
        done_upto += len(snapshot)
        seen.update(keys_of(snapshot))
        if all(k in seen for k in expected):
            break
        time.sleep(1.0)
    t_drained = time.time()
    time.sleep(args.settle)
    sampler.sample(force_pss=True)
    busy1 = system_busy()
    wall = time.monotonic() - t0
    for _, pp, _ in prof_procs:
        try:
            pp.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(pp.pid, signal.SIGKILL)
    sampler.stop_event.set()
    crashed = None if alive() else (", ".join(f"{label} exit {w.exit_code()}" for label, w in workers)
                                    + f", beat exit {beat.exit_code()}")
    bench_cpu = time.process_time()

    # -- results ------------------------------------------------------------------
    # The rows first, then what was received: the workers are still running,
    # and a row is marked sent only after its POST was answered, so every row
    # read as sent here is in the snapshot below. (The other order counted
    # deliveries sent in between as 'sent but not received'.)
    import sqlalchemy as sa

    from services.store import Store
    from services.store.models import Delivery, SeenArticle

    store = Store(db_url)
    with store.sessions() as s:
        rows = s.execute(sa.select(Delivery.item_source, Delivery.item_id, Delivery.subscription, Delivery.channel,
                                   Delivery.created_at, Delivery.attempts, Delivery.status)).all()
        seen_items = set(s.scalars(sa.select(SeenArticle.article_id)))
    store.dispose()
    recs = list(received)
    keys = keys_of(recs)
    first_at: dict[tuple, float] = {}
    per_key = Counter(r.key for r in recs)
    per_triple = Counter(keys)
    for k, r in zip(keys, recs):
        first_at.setdefault(k, r.at)
    lost = [k for k in expected if k not in first_at]
    unexpected = [k for k in first_at if k not in expected]
    dup_keys = sum(c - 1 for k, c in per_key.items() if c > 1 and k)
    dup_triples = sum(c - 1 for c in per_triple.values() if c > 1)
    duplicated = max(dup_keys, dup_triples)
    latency = [first_at[k] - pub for k, pub in expected.items() if k in first_at]

    wlogs = {label: read_worker_log(w.log) for label, w in workers}
    wlog = merge_logs(list(wlogs.values()))
    # Why an expected webhook did not arrive: its item never polled (the poll
    # backlog), its delivery still waiting in the outbox/queue (the delivery
    # backlog), or truly lost (seen with no delivery row, or sent/failed and
    # never received).
    row_status = {(sub, guid, ch[len(hook_base):] if ch.startswith(hook_base) else ch): str(st)
                  for _, guid, sub, ch, _, _, st in rows}
    why_lost = Counter()
    for k in lost:
        st = row_status.get(k)
        if st is None:
            why_lost["item not polled yet" if k[1] not in seen_items else "LOST: item seen, no delivery row"] += 1
        elif st.rsplit(".", 1)[-1].lower() in ("pending", "retrying", "sending"):
            why_lost[f"still in the outbox ({st.rsplit('.', 1)[-1].lower()})"] += 1
        else:
            why_lost[f"LOST: delivery {st.rsplit('.', 1)[-1].lower()} but not received"] += 1
    poll_to_recv, pub_to_poll_start, unmatched_polls = [], [], 0
    attempts = Counter()
    pub_of = {it.guid: it.published for it in published}
    for src, guid, sub, channel, created, n_attempts, status in rows:
        attempts[n_attempts] += 1
        path = channel[len(hook_base):] if channel.startswith(hook_base) else channel
        k = (sub, guid, path)
        if k not in first_at:
            continue
        start = created.replace(tzinfo=timezone.utc).timestamp() if created.tzinfo is None else created.timestamp()
        times = wlog.poll_done.get(src, [])
        i = bisect.bisect_left(times, start - 0.002)  # log stamps are ms, created_at us
        if i < len(times):
            poll_to_recv.append(first_at[k] - times[i])
        else:
            unmatched_polls += 1
        if guid in pub_of:
            pub_to_poll_start.append(start - pub_of[guid])

    workers_procs = {pid: i for pid, i in sampler.procs.items()}
    cpu_by_role: dict[str, float] = defaultdict(float)
    for pid, info in workers_procs.items():
        cpu_by_role[info.role] += info.cpu - cpu_marks0.get(pid, 0.0)
    qpub = sampler.queue_max_by_phase["publishing"]
    qdrain = sampler.queue_max_by_phase["draining"]

    print()
    print(f"| {n:,} sources, {m:,} subscriptions ({args.subscriptions_in}, "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}) | |")
    print("|---|---|")
    print(f"| latency publish -> webhook, p50 / p99 | {p50_99(latency)} |")
    print(f"| of which poll done -> received, p50 / p99 | {p50_99(poll_to_recv)} |")
    print(f"| publish -> poll start (the wait for a poll), p50 / p99 | {p50_99(pub_to_poll_start)} |")
    for label, w in workers:
        lg = wlogs[label]
        ready = f"{lg.ready_at - t_start:.1f} s" if lg.ready_at else "n/a"
        first_tasks = sorted((v[0] - t_start, v[1], v[2]) for proc, v in lg.first_task.items()
                             if runs_tasks(proc))
        ft = " ".join(f"{a:.1f}" for a, *_ in first_tasks) or "none"
        ftd = " ".join(f"{d:.2f}" for _, d, *_ in first_tasks)
        print(f"| {label} worker ({pool_of(args, label)}): ready / each pool process's first task done "
              f"(s after start; its duration) | {ready} / {ft} s ({ftd} s) |")
    for label, w in workers:
        kids = [i for i in workers_procs.values() if i.role == f"{label} child"]
        parent = [i for i in workers_procs.values() if i.role == label]
        print(f"| {label} worker memory, whole tree: largest PSS by warm-up / over the run; largest RSS sum | "
              f"{mb(mem_warm[label])} / {mb(sampler.tree_pss_max[label])}; {mb(sampler.tree_rss_max[label])} "
              f"(parent PSS {', '.join(mb(i.pss_max) for i in parent)}; pool processes PSS "
              f"{', '.join(mb(i.pss_max) for i in kids)}; RSS {', '.join(mb(i.rss_max) for i in kids)}) |")
    print(f"| all workers together: largest PSS / RSS (same sample) | {mb(sampler.all_pss_max)} / "
          f"{mb(sampler.all_rss_max)} |")
    other_rss = ", ".join(f"{i.role} {mb(i.rss_max)}" for i in workers_procs.values()
                          if i.role in ("beat", "redis-server"))
    print(f"| memory of beat / redis (RSS) | {other_rss} |")
    print(f"| longest poll / deliver / sweep queue (publishing; draining) | {qpub['poll']:,} / "
          f"{qpub['deliver']:,} / {qpub['sweep']:,}; {qdrain['poll']:,} / {qdrain['deliver']:,} / "
          f"{qdrain['sweep']:,} |")
    cpu_line = ", ".join(f"{role} {sec:.1f}" for role, sec in sorted(cpu_by_role.items()))
    print(f"| CPU seconds while publishing + draining ({wall:.0f} s wall) | {cpu_line}, harness "
          f"(feeds, receiver, matcher) {bench_cpu:.1f} incl. setup; machine busy {busy1 - busy0:.0f} of "
          f"{wall * (os.cpu_count() or 1):.0f} CPU-s |")
    if changer is not None:
        applied = change_applied(p_worker.log, changer.done,
                                 threads=args.pools == "split" and args.poll_pool == "threads")
        firsts = [a for a, _ in applied if a == a]
        secs = [b for _, b in applied if b == b]
        print(f"| subscription change (API update) -> applied in the first / in all poll pool "
              f"processes alive across it ({p_conc} at a time), median (max) | "
              + (f"{statistics.median(firsts):.2f} ({max(firsts):.2f}) s" if firsts else "n/a") + " / "
              + (f"{statistics.median(secs):.2f} ({max(secs):.2f}) s" if secs else "n/a")
              + f" ({len(secs)} of {len(changer.done)} changes applied in all"
              + (f"; errors: {'; '.join(changer.errors[:3])}" if changer.errors else "") + ") |")
    print(f"| items published | {len(published):,} over {args.duration:g} s |")
    print(f"| webhooks expected / received / not received (of which truly lost) / duplicated | "
          f"{len(expected):,} / {len(set(first_at) & set(expected)):,} / {len(lost):,} "
          f"({sum(c for w, c in why_lost.items() if w.startswith('LOST')):,}) / {duplicated:,} |")
    print()
    mean_poll = statistics.fmean(wlog.task_secs["tulpar.poll_source"]) if wlog.task_secs["tulpar.poll_source"] else 0
    mean_deliver = statistics.fmean(wlog.task_secs["tulpar.deliver"]) if wlog.task_secs["tulpar.deliver"] else 0
    print(f"tasks: {len(wlog.task_secs['tulpar.poll_source']):,} polls (mean {1000 * mean_poll:.0f} ms, "
          f"p99 {1000 * pct(wlog.task_secs['tulpar.poll_source'], 99):.0f} ms), "
          f"{len(wlog.task_secs['tulpar.deliver']):,} deliveries (mean {1000 * mean_deliver:.0f} ms), "
          f"{len(wlog.task_secs['tulpar.sweep']):,} sweeps ({wlog.sweeps} re-enqueued {wlog.swept:,}); "
          f"feed GETs {feeds.gets:,} (304: {feeds.not_modified:,})")
    print(f"delivery rows: {len(rows):,}; attempts per row: {dict(sorted(attempts.items()))}; "
          f"unexpected webhooks: {len(unexpected)}; deliveries whose poll line was not found: {unmatched_polls}")
    if sampler.series:
        step = max(1, len(sampler.series) // 12)
        print("queues over time (s since start: poll/deliver queue): " + "; ".join(
            f"{ts - t_start:.0f}: {pq}/{dq}" for ts, pq, dq, _ in sampler.series[::step]))
    if wlog.warnings:
        print("worker warnings: " + "; ".join(f"{c}x {w}" for w, c in wlog.warnings.most_common(5)))
    if wlog.errors:
        print(f"worker log: {len(wlog.errors)} ERROR/Traceback lines, e.g.: {wlog.errors[0][:300]}")
    if crashed:
        print(f"CRASHED: {crashed}")
    if lost:
        print(f"NOT RECEIVED by the end of the drain ({len(lost)}): "
              + ", ".join(f"{c:,} {w}" for w, c in why_lost.most_common())
              + "; e.g. " + ", ".join(f"{s}/{g}" for s, g, _ in lost[:5]))
    if duplicated:
        print(f"DUPLICATED: {dup_keys} by idempotency key, {dup_triples} by (subscription, article, channel)")
    if unexpected:
        print(f"UNEXPECTED ({len(unexpected)}), e.g.: " + ", ".join(f"{s}/{g}" for s, g, _ in unexpected[:10]))
    for label, _, out in prof_procs:
        print(f"--- profile of the {label} worker ---")
        for line in summarize_profile(out):
            print(line)
    if args.keep:
        print(f"kept: {tmp}")
    ok = not lost and not duplicated and not unexpected and not crashed
    print("RESULT:", "OK: nothing lost or duplicated" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
