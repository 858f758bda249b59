"""End-to-end harness: a real Celery worker (with embedded beat for the
outbox sweeper) in a child process, against the session's redis-server, a
SQLite file, a loopback feed server, an aiosmtpd sink and a webhook sink."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from services.store import Store, schema

ROOT = Path(__file__).resolve().parents[2]
RETRY_SCHEDULE = "0.05s,0.5s,1s,2s,2s,3s,3s,3s,3s,3s"

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test wire</title><link>http://wire.test/</link>
<description>test</description>{items}</channel></rss>"""
ITEM = """<item><title>{title}</title><link>http://wire.test/{guid}</link>
<guid isPermaLink="false">{guid}</guid><pubDate>Wed, 25 Nov 2026 06:00:00 GMT</pubDate>
<description>{summary}</description></item>"""


def write_feed(path: Path, items: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(RSS.format(items="".join(ITEM.format(**i) for i in items)), encoding="utf-8")
    tmp.rename(path)


class Service:
    """One tulpar deployment in miniature: config, env, worker process."""

    def __init__(self, tmp: Path, redis_url: str, feed_url: str, mail_port: int, webhook_url: str):
        self.tmp = tmp
        self.config = tmp / "tulpar.yaml"
        self.config.write_text(f"""
allow_private_targets: true
sources:
  - name: wire
    url: {feed_url}
    interval: 1h
subscriptions:
  - name: cpc-disruption
    query: 'cpc AND (halt* OR damage*)'
    channels: [mailto:desk@example.com, {webhook_url}]
""")
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "TULPAR_VAR_DIR": str(tmp / "var"),
            "TULPAR_CONFIG": str(self.config),
            "TULPAR_SMTP_HOST": "127.0.0.1",
            "TULPAR_SMTP_PORT": str(mail_port),
            "TULPAR_HTTP_TIMEOUT": "2",
            "TULPAR_SWEEP_INTERVAL": "0.5",
            # The default schedule's shape (short first, then longer), in
            # seconds instead of hours: spans ~20 s over 11 attempts.
            "TULPAR_RETRY_SCHEDULE": RETRY_SCHEDULE,
            "TULPAR_REQUEUE_AFTER": "5",
        }
        self.env.pop("DATABASE_URL", None)  # the e2e runs on its own SQLite file
        self.db_url = f"sqlite:///{tmp / 'var' / 'tulpar.db'}"
        (tmp / "var").mkdir(exist_ok=True)
        schema.upgrade(self.db_url)  # as a deployment runs `tulpar db upgrade` before its workers
        self.store = Store(self.db_url)
        self.worker: subprocess.Popen | None = None

    def start_worker(self) -> None:
        log = open(self.tmp / "worker.log", "ab")
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-B",
             "--loglevel", "INFO", "--concurrency", "2",
             "--schedule", str(self.tmp / "var" / "beat-schedule"),
             "--hostname", f"e2e-{os.getpid()}-{time.monotonic_ns()}@%h"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)

    def kill_worker(self) -> None:
        """SIGKILL the whole worker: main process, pool children and beat."""
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()
        self.worker = None

    def stop_worker(self) -> None:
        if self.worker and self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGTERM)
            try:
                self.worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.worker.pid, signal.SIGKILL)
                self.worker.wait()
        self.worker = None

    def poll_once(self) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services", "poll", "--once"],
                              env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60)

    def log(self) -> str:
        path = self.tmp / "worker.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def wait_until(predicate, timeout: float = 60.0, what: str = "condition", log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- worker log ---\n{log()}")


@pytest.fixture
def service(tmp_path, redis_server, file_server, mail_sink, webhook_sink):
    redis.Redis.from_url(redis_server.url).flushall()
    svc = Service(tmp_path, redis_server.url, file_server.url + "/wire.xml",
                  mail_sink.port, webhook_sink.url + "/hooks/desk")
    svc.feed = file_server.root / "wire.xml"
    write_feed(svc.feed, [])
    yield svc
    svc.stop_worker()
    svc.store.dispose()
