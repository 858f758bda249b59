"""A worker loads the subscriptions once, in its parent before the pool forks
(workers/runtime.py), on real parts: a `celery worker` subprocess, the
session's redis-server, a migrated SQLite file with tenants' subscriptions
written through services.accounts, and a loopback feed server that answers
slowly enough for polls to reach every pool process.

- the parent loads them (one "subscriptions: loaded" line, the parent's) and
  reads the config file once; the pool processes poll without loading or
  reading either again;
- a change made after the fork reaches every pool process and is matched;
- a worker that only delivers (-Q deliver) loads nothing in the parent, nor
  do its pool processes, and the parent does not read the config file.
"""
from __future__ import annotations

import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from services.accounts import channels, subscriptions, tenants
from services.delivery.queue import Queue
from services.settings import Settings
from services.store import Store
from services.store.models import Delivery
from workers import runtime as rt_mod

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
N_SUBS = 40
CONCURRENCY = 2
RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>http://wire.test/</link><description>t</description>
{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>http://wire.test/{guid}</link><guid isPermaLink="false">{guid}</guid>
<description>x</description></item>"""
PROC = re.compile(r"/(ForkPoolWorker-\d+|MainProcess)\] ")


class SlowFeed:
    """A loopback feed that answers after 0.2 s: polls overlap, so each pool
    process gets some (instant ones would all go to the first idle one)."""

    def __init__(self):
        self.body = RSS.format(items="")
        feed = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                time.sleep(0.2)
                body = feed.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *args: None
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wire.xml"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, *items: tuple[str, str]) -> None:
        self.body = RSS.format(items="".join(ITEM.format(guid=g, title=t) for g, t in items))


class Worker:
    def __init__(self, tmp: Path, env: dict, queues: str | None, pool: str = "prefork",
                 concurrency: int = CONCURRENCY, extra: tuple[str, ...] = ()):
        self.log_path = tmp / "worker.log"
        cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--loglevel", "INFO", "--pool", pool,
               "--concurrency", str(concurrency), "--hostname", f"preload-{os.getpid()}-{time.monotonic_ns()}@%h"]
        if queues:
            cmd += ["-Q", queues]
        cmd += list(extra)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def lines(self, pattern: str) -> list[tuple[str, str]]:
        """(process name, line) of each log line matching `pattern`."""
        out = []
        for line in self.log().splitlines():
            m = PROC.search(line)
            if m and re.search(pattern, line):
                out.append((m.group(1), line))
        return out

    def processes(self, pattern: str) -> set[str]:
        return {p for p, _ in self.lines(pattern) if p != "MainProcess"}

    def wait(self, what: str, until, tick=lambda: None, timeout: float = 90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}) waiting for {what}\n{self.log()[-4000:]}")
            got = until()
            if got:
                return got
            tick()
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n--- worker log ---\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def deployment(tmp_path, var_db, broker):
    """A migrated database with N_SUBS subscriptions of one tenant, a config
    file with one (slow) source, and a way to start a worker on them."""
    store = Store(var_db)
    settings = Settings()
    tenant = tenants.create(store, "acme", NOW).tenant
    hook = channels.create_webhook(store, tenant.id, "https://hooks.example.com/acme", "json", settings,
                                   NOW).channel
    ids = [subscriptions.create(store, tenant.id, f"s{i}", [hook.id], NOW, query=f"unheard{i} OR never{i}").row.id
           for i in range(N_SUBS)]
    feed = SlowFeed()
    config = tmp_path / "tulpar.yaml"
    config.write_text(f"sources:\n  - name: wire\n    url: {feed.url}\n    interval: 1h\n"
                      "allow_private_targets: true\nsubscriptions: []\n")
    env = {**os.environ, "REDIS_URL": broker, "TULPAR_CONFIG": str(config),
           "TULPAR_VAR_DIR": os.environ["TULPAR_VAR_DIR"], "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    queue = Queue(broker)
    workers: list[Worker] = []

    def start(queues: str | None = None, **kwargs) -> Worker:
        workers.append(Worker(tmp_path, env, queues, **kwargs))
        return workers[-1]

    yield SimpleNamespace(store=store, tenant=tenant, ids=ids, feed=feed, queue=queue, start=start)
    for w in workers:
        w.stop()
    feed.server.shutdown()
    queue.close()
    store.dispose()


def keep_polling(worker: Worker, queue: Queue):
    """A tick that keeps about two polls per pool process waiting."""
    sent = [0]

    def tick() -> None:
        if sent[0] - len(worker.lines(r"\] poll wire: ")) < 2 * CONCURRENCY:
            queue.poll(["wire"])
            sent[0] += 1

    return tick


def publish_and_deliver(d, worker: Worker, tick) -> list[str]:
    """Publish an item about a CPC halt; the subscriptions it was delivered to."""
    d.feed.publish(("cpc-1", "CPC halts loadings after mooring damage"))

    def delivered():
        with d.store.sessions() as s:
            return s.scalars(sa.select(Delivery.subscription_id).where(Delivery.item_id == "cpc-1")).all()

    return worker.wait("the changed subscription's delivery", delivered, tick)


def test_the_pool_shares_the_parents_loaded_subscriptions_and_applies_later_changes(deployment):
    d = deployment
    worker = d.start()
    worker.wait("ready", lambda: re.search(r"@\S+ ready\.", worker.log()))
    tick = keep_polling(worker, d.queue)
    polled = worker.wait("a poll in every pool process",
                         lambda: len(worker.processes(r"\] poll wire: ")) >= CONCURRENCY, tick)
    assert polled

    # Loaded once, by the parent, before the fork; the config file read once, there too.
    loads = worker.lines(r"subscriptions: loaded \d+ from the database")
    assert [p for p, _ in loads] == ["MainProcess"], loads
    assert f"subscriptions: loaded {N_SUBS} from the database" in loads[0][1]
    assert [p for p, _ in worker.lines(r"preloaded \d+ subscriptions for the pool")] == ["MainProcess"]
    assert [p for p, _ in worker.lines(r"config: read ")] == ["MainProcess"]

    # A change after the fork: every pool process applies it (and only it) at
    # its next poll, and it matches.
    sid = d.ids[7]
    subscriptions.update(d.store, d.tenant.id, sid, NOW, query="cpc AND halt*")
    applied = worker.wait("the change in every pool process",
                          lambda: len(worker.processes(rf"subscriptions: 1 changed \({sid}\)")) >= CONCURRENCY
                          and worker.processes(rf"subscriptions: 1 changed \({sid}\)"), tick)
    assert len(applied) == CONCURRENCY
    # Published once every process has it (a poll already running when the
    # change was made would take the item in with the index it started with).
    assert publish_and_deliver(d, worker, tick) == [sid]
    # Still nobody loaded again, nor read the config.
    assert [p for p, _ in worker.lines(r"subscriptions: loaded ")] == ["MainProcess"]
    assert [p for p, _ in worker.lines(r"config: read ")] == ["MainProcess"]


def test_pool_processes_replaced_after_max_tasks_start_from_the_parents_refresh(deployment):
    # The Procfile replaces a poll process every TULPAR_POLL_MAX_TASKS polls
    # (here 2): the parent applies the changes logged so far just before it
    # forks, so a new process does not apply the worker's whole history.
    d = deployment
    worker = d.start(extra=("--max-tasks-per-child", "2"))
    worker.wait("ready", lambda: re.search(r"@\S+ ready\.", worker.log()))
    tick = keep_polling(worker, d.queue)
    worker.wait("a poll in every pool process", lambda: len(worker.processes(r"\] poll wire: ")) >= CONCURRENCY, tick)
    sid = d.ids[3]
    subscriptions.update(d.store, d.tenant.id, sid, NOW, query="cpc AND halt*")
    changed = rf"subscriptions: 1 changed \({sid}\)"
    worker.wait("the parent applying the change before a fork",
                lambda: "MainProcess" in {p for p, _ in worker.lines(changed)}, tick)
    before = len(worker.processes(r"\] poll wire: "))
    worker.wait("four more pool processes polling",
                lambda: len(worker.processes(r"\] poll wire: ")) >= before + 4, tick)
    # Only processes forked before the parent applied it apply it themselves.
    assert len(worker.processes(changed)) <= CONCURRENCY, worker.lines(changed)
    assert publish_and_deliver(d, worker, tick) == [sid]
    # Loaded once, by the parent, however many processes came and went.
    assert [p for p, _ in worker.lines(r"subscriptions: loaded ")] == ["MainProcess"]


def test_the_procfiles_poll_worker_loads_once_and_its_threads_follow_changes(deployment):
    """The Procfile's poll line with TULPAR_POLL_POOL=threads: threads of one process, which loads the
    subscriptions once; changes made while polls run in several threads are
    applied once each, and the last one is what matches."""
    d = deployment
    worker = d.start("poll", pool="threads", concurrency=4)
    worker.wait("ready", lambda: re.search(r"@\S+ ready\.", worker.log()))
    sent = [0]

    def tick() -> None:  # keep about six polls waiting: four run at once
        if sent[0] - len(worker.lines(r"\] poll wire: ")) < 6:
            d.queue.poll(["wire"])
            sent[0] += 1

    worker.wait("polls", lambda: len(worker.lines(r"\] poll wire: ")) >= 8, tick)
    changed = d.ids[:10]
    for i, sid in enumerate(changed):  # while polls keep running
        subscriptions.update(d.store, d.tenant.id, sid, NOW, query=f"pipeline{i} OR cpc" if i == 9 else f"gone{i}")
        tick()
        time.sleep(0.05)
    # Each change applied once (one process), none twice, none missed.
    for sid in changed:
        worker.wait(f"the change of {sid}", lambda sid=sid: worker.lines(rf"subscriptions: \d+ changed \(.*{sid}"),
                    tick)
    applied = [line for _, line in worker.lines(r"subscriptions: \d+ changed \(")]
    assert sum(int(re.search(r"subscriptions: (\d+) changed", line).group(1)) for line in applied) == len(changed)
    d.feed.publish(("cpc-1", "CPC halts loadings after mooring damage"))

    def delivered():
        with d.store.sessions() as s:
            return s.scalars(sa.select(Delivery.subscription_id).where(Delivery.item_id == "cpc-1")).all()

    assert worker.wait("the changed subscription's delivery", delivered, tick) == [changed[9]]
    assert len(worker.lines(r"subscriptions: loaded ")) == 1
    assert len(worker.lines(r"config: read ")) == 1
    assert "Traceback" not in worker.log() and "ERROR" not in worker.log()


def test_a_deliver_only_worker_loads_no_subscription(deployment):
    d = deployment
    worker = d.start("deliver")
    worker.wait("ready", lambda: re.search(r"@\S+ ready\.", worker.log()))
    d.queue.deliver([987654])  # no such delivery: the task runs, finds nothing, finishes
    worker.wait("the delivery task to finish", lambda: worker.lines(r"tulpar\.deliver\[.*\] succeeded"))
    assert worker.lines(r"subscriptions: loaded|preloaded") == []
    # The parent never reads the config file; the pool process that
    # delivered did, once, for its settings.
    assert {p for p, _ in worker.lines(r"config: read ")} <= {f"ForkPoolWorker-{i}" for i in range(1, 9)}
    assert len(worker.lines(r"config: read ")) == 1


# -- in process ------------------------------------------------------------------

def test_only_a_worker_consuming_the_poll_queue_preloads():
    def worker(*names):
        return SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(
            consume_from={n: object() for n in names}))))

    assert rt_mod.consumes_polls(worker("poll", "deliver", "sweep"))
    assert rt_mod.consumes_polls(worker("poll"))
    assert not rt_mod.consumes_polls(worker("deliver"))
    assert not rt_mod.consumes_polls(worker("deliver", "sweep"))


def test_after_a_fork_the_process_keeps_the_loaded_subscriptions_with_its_own_connections(
        tmp_path, monkeypatch, var_db, broker):
    config = tmp_path / "tulpar.yaml"
    config.write_text("sources: []\nsubscriptions:\n  - name: desk\n    query: cpc\n"
                      "    channels: [mailto:desk@example.com]\n")
    monkeypatch.setenv("TULPAR_CONFIG", str(config))
    monkeypatch.setenv("REDIS_URL", broker)
    monkeypatch.setattr(rt_mod, "_current", None)
    try:
        parent = rt_mod.preload()
        live, queue = parent.lazy_live.loaded, parent.queue
        assert live is not None and "desk" in [s.name for s in live.subscriptions.news.subscriptions()]
        rt_mod._after_fork()
        child = rt_mod.runtime()
        assert child.lazy_live.loaded is live  # not loaded again
        assert child.queue is not queue and child.config_file is parent.config_file
        assert child.subscriptions_now() is live.subscriptions
    finally:
        import gc

        gc.unfreeze()
        if rt_mod._current is not None:
            rt_mod._current.store.dispose()
            rt_mod._current.queue.close()
        rt_mod._current = None
