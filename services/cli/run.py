"""`tulpar run`: the whole service in one process tree.

Starts a Celery worker and beat for the config, plus a local stand-in for
whatever the environment does not name: a redis-server when REDIS_URL is
unset, an SMTP sink writing .eml files under var/mail when TULPAR_SMTP_HOST is
unset. It always serves the demo site (demo/feeds, published item by item) and
a webhook sink writing JSON under var/webhooks; configs reach them through
${TULPAR_DEMO_URL} and ${TULPAR_DEMO_WEBHOOK}. Ctrl-C stops everything.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

from services.settings import ROOT, Settings

# The rest is imported in `handle`: other `tulpar` commands should start fast.


def register(sub) -> None:
    p = sub.add_parser("run", help="run worker, beat and local stand-ins (the offline demo by default)")
    p.add_argument("--config", help="config YAML (default: config/demo.yaml)")
    p.add_argument("--publish-every", type=float, default=8.0,
                   help="seconds between demo items being published (default 8)")
    p.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from services import config as config_mod
    from services.demo import DemoPublisher, DemoRates
    from services.local.http_servers import FileServer, WebhookSink
    from services.local.mail_sink import MailSink
    from services.local.ports import free_port
    from services.local.redis_process import RedisProcess
    from services.store import Store

    settings = Settings()
    if args.config:
        settings = settings.model_copy(update={"config": Path(args.config).resolve()})
    var = settings.var_dir
    env = dict(os.environ)
    # Choose ports first: the config may name them, and a bad config must stop
    # us before anything starts.
    demo_port, hook_port = free_port(), free_port()
    env["TULPAR_DEMO_URL"] = os.environ["TULPAR_DEMO_URL"] = f"http://127.0.0.1:{demo_port}"
    env["TULPAR_DEMO_WEBHOOK"] = os.environ["TULPAR_DEMO_WEBHOOK"] = f"http://127.0.0.1:{hook_port}/hooks/demo"
    try:
        cfg = config_mod.load(settings.config)
    except config_mod.ConfigError as exc:
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2

    stack: list = []
    children: list[subprocess.Popen] = []
    try:
        for d in ("mail", "webhooks", "log", "demo-www"):
            (var / d).mkdir(parents=True, exist_ok=True)
        publisher = DemoPublisher(ROOT / "demo" / "feeds", var / "demo-www", time.strftime("%Y%m%d%H%M%S"))
        publisher.write()
        # The demo's rate file: day one now, day two (a >1% move) a little later.
        rates = DemoRates(ROOT / "demo" / "rates", var / "demo-www" / "rates" / "get_rates.xml",
                          var / "demo-rates-day.txt", datetime.now(timezone.utc).date())
        rates.publish_next()
        stack.append(FileServer(var / "demo-www", port=demo_port).start())
        stack.append(WebhookSink(var / "webhooks", port=hook_port).start())
        if not os.environ.get("REDIS_URL"):
            redis = RedisProcess(var / "redis").start()
            stack.append(redis)
            env["REDIS_URL"] = redis.url
        if not os.environ.get("TULPAR_SMTP_HOST"):
            mail = MailSink(var / "mail").start()
            stack.append(mail)
            env["TULPAR_SMTP_HOST"], env["TULPAR_SMTP_PORT"] = mail.host, str(mail.port)
        env["TULPAR_CONFIG"] = str(settings.config)
        Store(settings.db_url).create_schema()

        celery = [sys.executable, "-m", "celery", "-A", "workers.app"]
        logs = var / "log"
        children.append(_spawn(celery + ["worker", "--loglevel", "INFO", "--concurrency",
                                         str(args.concurrency), "--hostname", f"tulpar-{os.getpid()}@%h"],
                               env, logs / "worker.log"))
        children.append(_spawn(celery + ["beat", "--loglevel", "INFO", "--schedule",
                                         str(var / "celerybeat-schedule")], env, logs / "beat.log"))
        _kick_polls(env["REDIS_URL"], cfg)
        print(f"tulpar: running {len(cfg.sources)} sources, {len(cfg.subscriptions)} subscriptions "
              f"from {settings.config}")
        print(f"tulpar: alerts arrive in {var / 'mail'} (.eml) and {var / 'webhooks'} (.json); "
              f"logs in {logs}; Ctrl-C stops")
        return _watch(var, children, publisher, args.publish_every, rates)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)
        for thing in reversed(stack):
            thing.stop()
        print("tulpar: stopped")


def _spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = open(log, "ab")
    # Own process group: Ctrl-C reaches us only, and we stop children in order.
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _kick_polls(redis_url: str, cfg) -> None:
    """Poll at once instead of waiting a whole interval for beat's first tick."""
    from services.queue import Queue

    queue = Queue(redis_url)
    queue.poll([source.name for source in cfg.sources])
    queue.close()


def _watch(var: Path, children, publisher, publish_every: float, rates=None) -> int:
    seen: set[Path] = set(var.glob("mail/*.eml")) | set(var.glob("webhooks/*.json"))
    next_publish = time.monotonic() + publish_every
    # Late enough that the worker has started and stored day one first.
    rates_every = max(20.0, 3 * publish_every)
    next_rates = time.monotonic() + rates_every
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"tulpar: {' '.join(child.args[3:5])} exited with {child.returncode}; "
                      f"see {var / 'log'}", file=sys.stderr)
                return 1
        for path in sorted(set(var.glob("mail/*.eml")) | set(var.glob("webhooks/*.json"))):
            if path not in seen:
                seen.add(path)
                print(_summary(path, var), flush=True)
        if time.monotonic() >= next_publish:
            publisher.publish_next()
            next_publish = time.monotonic() + publish_every
        if rates is not None and time.monotonic() >= next_rates:
            rates.publish_next()
            next_rates = time.monotonic() + rates_every
        time.sleep(0.5)


def _summary(path: Path, var: Path) -> str:
    rel = path.relative_to(var.parent) if var.parent in path.parents else path
    try:
        if path.suffix == ".eml":
            msg = message_from_bytes(path.read_bytes(), policy=policy.default)
            return f"email    {rel}  to {msg['To']}: {msg['Subject']}"
        data = json.loads(path.read_text())
        payload = data.get("payload") or {}
        what = payload.get("title") or (payload.get("article") or {}).get("title") or payload.get("pair") or ""
        return f"webhook  {rel}  {payload.get('subscription', '')}: {what}"
    except Exception as exc:  # a summary must never stop the demo
        return f"alert    {rel}  (could not summarise: {exc})"


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
