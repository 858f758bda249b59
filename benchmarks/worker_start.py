"""A real Celery worker starting on a database of many tenant subscriptions
(issue 13): how long until it is ready and until each pool process can poll,
how much memory the whole worker (parent + pool processes) really takes, and
how long a subscription change takes to reach every pool process.

    .venv/bin/python benchmarks/worker_start.py                      # 100k subscriptions, concurrency 4
    .venv/bin/python benchmarks/worker_start.py --subs 10000 --changes 3
    .venv/bin/python benchmarks/worker_start.py --database /tmp/bench.db   # reuse (or keep) the filled file
    .venv/bin/python benchmarks/worker_start.py --queues deliver           # a deliver-only worker
    .venv/bin/python benchmarks/worker_start.py --code /tmp/tulpar-head    # the worker from another tree
                                                                            # (a `git archive` export)

What it does: a SQLite database with --subs subscriptions written as the API
leaves them (benchmarks/subscription_change.py's `fill`: news queries of the
matcher benchmark's mix, 1% FX rules, one confirmed webhook channel per
tenant); a private redis-server; a loopback feed server with one source in
the config file (no subscriptions there; the server answers after 0.2 s, so
that polls overlap and reach every pool process); then `celery -A workers.app worker
--concurrency 4` (the Procfile's worker line) as a subprocess, its log read
as it is written. It prints:

- ready: from starting the process to Celery's "ready." line;
- each child can poll: polls are kept enqueued (two per pool process) from
  "ready." on, until
  every pool process has logged a finished poll: the first per process (it
  includes loading the subscriptions when the process loads them itself);
- memory of the worker tree from /proc/PID/smaps_rollup: RSS (counts shared
  pages once per process), PSS (shared pages split between the processes
  sharing them: the sum is what the tree really takes) and USS (pages only
  that process has), parent and each child, after the first polls and again
  after the changes;
- change -> applied: --changes times, a subscription's query is changed
  through services.accounts.subscriptions (as the API does) while polls keep
  being enqueued (each takes 0.2 s); the time until every pool process has logged
  applying it (Live.refresh's "subscriptions: 1 changed (ID" line). A
  running worker applies a change at its next poll's start, so in service add
  the wait for the next poll.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>http://wire.test/</link><description>t</description>
<item><title>Oil exports halted at the terminal</title><link>http://wire.test/1</link>
<guid isPermaLink="false">1</guid><description>Shipments of crude oil and grain were halted.</description></item>
</channel></rss>"""
READY = re.compile(r"@\S+ ready\.")
POLL_DELAY = 0.2
PROC = re.compile(r"/(ForkPoolWorker-\d+|MainProcess)\]")


class SlowFeed:
    """A loopback feed server that takes POLL_DELAY to answer: polls overlap,
    so every pool process gets some (an instant one would all go to the
    first idle process)."""

    def __init__(self):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(POLL_DELAY)
                body = FEED.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None  # a worker stopping mid-answer
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


class LogTail:
    """The worker's log, each line stamped (time.monotonic) as it is read."""

    def __init__(self, path: Path):
        self.path, self.lines, self.stop = path, [], False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.path.exists():
            time.sleep(0.01)
        with self.path.open(errors="replace") as f:
            buf = ""
            while not self.stop:
                chunk = f.read()
                if not chunk:
                    time.sleep(0.01)
                    continue
                buf += chunk
                *done, buf = buf.split("\n")
                now = time.monotonic()
                self.lines += [(now, line) for line in done]

    def first(self, pattern: re.Pattern, since: int = 0) -> tuple[float, str] | None:
        for at, line in self.lines[since:]:
            if pattern.search(line):
                return at, line
        return None

    def per_process(self, pattern: re.Pattern, since: int = 0) -> dict[str, float]:
        """The time of each pool process's first line matching `pattern`."""
        out: dict[str, float] = {}
        for at, line in self.lines[since:]:
            m = PROC.search(line)
            if m and m.group(1) != "MainProcess" and pattern.search(line):
                out.setdefault(m.group(1), at)
        return out


def memory(pid: int) -> dict[str, int]:
    """kB from /proc/PID/smaps_rollup: Rss, Pss and Uss (private clean + dirty)."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def tree_memory(pid: int) -> tuple[dict[str, int], list[dict[str, int]]]:
    return memory(pid), [memory(c) for c in children(pid)]


def mb(kb: int) -> str:
    return f"{kb / 1024:,.0f}"


def print_memory(label: str, parent: dict, kids: list[dict]) -> None:
    total = {k: parent[k] + sum(c[k] for c in kids) for k in parent}
    print(f"  memory {label} (MB): {'':8s} {'RSS':>7s} {'PSS':>7s} {'USS':>7s}")
    print(f"    {'parent':22s} {mb(parent['rss']):>7s} {mb(parent['pss']):>7s} {mb(parent['uss']):>7s}")
    for i, c in enumerate(kids):
        print(f"    {'child ' + str(i + 1):22s} {mb(c['rss']):>7s} {mb(c['pss']):>7s} {mb(c['uss']):>7s}")
    print(f"    {'worker tree':22s} {mb(total['rss']):>7s} {mb(total['pss']):>7s} {mb(total['uss']):>7s}"
          "   <- PSS is what it really takes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subs", type=int, default=100_000)
    ap.add_argument("--tenants", type=int, default=1_000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--changes", type=int, default=5, help="subscription changes timed")
    ap.add_argument("--queues", help="the worker's -Q (default: all, as the Procfile's worker)")
    ap.add_argument("--database", type=Path, help="SQLite file: filled when missing, reused when present")
    ap.add_argument("--code", type=Path, default=ROOT, help="the tree the worker runs from")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()

    import subscription_change as sc
    from services.accounts import subscriptions as accounts
    from services.delivery.queue import Queue
    from services.local.redis_process import RedisProcess
    from services.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="tulpar-workerstart-"))
    db_path = args.database or tmp / "bench.db"
    url = f"sqlite:///{db_path}"
    if not db_path.exists():
        print(f"filling {db_path}: {args.subs:,} subscriptions over {args.tenants:,} tenants ...", flush=True)
        print(f"  written in {sc.fill(url, args.subs, args.tenants, args.seed):.1f} s")
    store = Store(url)
    with RedisProcess(tmp / "redis") as redis, SlowFeed() as files:
        config = tmp / "tulpar.yaml"
        config.write_text(f"allow_private_targets: true\nsources:\n  - name: wire\n"
                          f"    url: {files.url}/wire.xml\n    interval: 1h\nsubscriptions: []\n")
        env = {**os.environ, "REDIS_URL": redis.url, "DATABASE_URL": url, "TULPAR_VAR_DIR": str(tmp / "var"),
               "TULPAR_CONFIG": str(config), "PYTHONPATH": str(args.code.resolve())}
        cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--loglevel", "INFO",
               "--concurrency", str(args.concurrency), "--hostname", f"bench-{os.getpid()}@%h"]
        if args.queues:
            cmd += ["-Q", args.queues]
        log_path = tmp / "worker.log"
        queue = Queue(redis.url)
        load_before = os.getloadavg()
        with log_path.open("wb") as log_file:
            t0 = time.monotonic()
            worker = subprocess.Popen(cmd, env=env, cwd=args.code, stdout=log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        tail = LogTail(log_path)
        try:
            run(args, worker, tail, t0, queue, store, accounts)
        finally:
            tail.stop = True
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
            queue.close()
            store.dispose()
        print(f"  load average at start / end: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
              f"(nproc {os.cpu_count()}); worker log: {log_path}")


def wait(what: str, until, deadline: float, tail: LogTail, tick=None):
    while time.monotonic() < deadline:
        got = until()
        if got:
            return got
        if tick:
            tick()
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}; log tail:\n" + "\n".join(line for _, line in tail.lines[-30:]))


def run(args, worker, tail: LogTail, t0: float, queue, store, accounts) -> None:
    from sqlalchemy import select

    from services.store.models import TenantSubscription

    deadline = t0 + args.timeout
    n = args.concurrency
    ready_at, _ = wait("ready", lambda: tail.first(READY) or (worker.poll() is not None and
                                                                sys.exit("worker exited")), deadline, tail)
    print(f"\n== celery worker --concurrency {n}{' -Q ' + args.queues if args.queues else ''}, "
          f"{args.code} ==")
    print(f"  ready: {ready_at - t0:.1f} s after start")
    if args.queues and "poll" not in args.queues.split(","):
        time.sleep(2)
        loads = sum(1 for _, line in tail.lines if "subscriptions: loaded" in line)
        print(f"  no poll queue: processes that loaded the subscriptions: {loads}")
        print_memory("when ready", *tree_memory(worker.pid))
        return
    polled = re.compile(r"\] poll wire: ")
    sent = [0]

    def tick() -> None:
        # Keep about two polls per pool process waiting, no more: a backlog
        # would still be draining during the measurements below.
        done = sum(1 for _, line in tail.lines if polled.search(line))
        if sent[0] - done < 2 * n:
            queue.poll(["wire"])
            sent[0] += 1

    firsts = wait("a poll in every pool process", lambda: len(tail.per_process(polled)) >= n and
                  tail.per_process(polled), deadline, tail, tick=tick)
    times = sorted(at - t0 for at in firsts.values())
    print(f"  each child's first poll done: {', '.join(f'{t:.1f}' for t in times)} s after start "
          f"({times[-1] - (ready_at - t0):.1f} s after ready for the last)")
    loads = sum(1 for _, line in tail.lines if "subscriptions: loaded" in line)
    print(f"  processes that loaded the subscriptions ('subscriptions: loaded' lines): {loads}")
    time.sleep(1)
    print_memory("after the first polls", *tree_memory(worker.pid))

    with store.sessions() as s:
        rows = list(s.execute(select(TenantSubscription.id, TenantSubscription.tenant_id)
                              .where(TenantSubscription.query.is_not(None))))
    rng = random.Random(args.seed)
    applied = []
    for k, (sid, tid) in enumerate(rng.sample(rows, args.changes)):
        since = len(tail.lines)
        t = time.monotonic()
        accounts.update(store, tid, sid, sc_now(), query=f"workerbench{k} AND changed")
        pattern = re.compile(r"subscriptions: 1 changed \(" + re.escape(sid))
        got = wait(f"change {k} in every pool process",
                   lambda: len(tail.per_process(pattern, since)) >= n and tail.per_process(pattern, since),
                   deadline + 60 * (k + 1), tail, tick=tick)
        applied.append(sorted(at - t for at in got.values()))
    if not applied:
        return
    worst = [a[-1] for a in applied]
    print(f"  change -> applied in every child ({args.changes} changes, polls of 0.2 s kept queued): "
          f"median {statistics.median(worst):.2f} s, max {max(worst):.2f} s; per child, first change: "
          f"{', '.join(f'{t:.2f}' for t in applied[0])} s")
    print_memory("after the changes", *tree_memory(worker.pid))


def sc_now():
    import subscription_change as sc

    return sc.NOW


if __name__ == "__main__":
    main()
