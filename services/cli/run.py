"""`tulpar run`: the whole service in one process tree.

Starts a Celery worker and beat for the config, the API (`tulpar api`, on
127.0.0.1:8000 or a free port when that is taken), plus a local stand-in for
whatever the environment does not name: a redis-server when REDIS_URL is
unset, an SMTP sink writing .eml files under var/mail when TULPAR_SMTP_HOST is
unset. It always serves the demo site (demo/feeds, published item by item) and
a webhook sink writing JSON under var/webhooks; configs reach them through
${TULPAR_DEMO_URL} and ${TULPAR_DEMO_WEBHOOK}.

The config's subscriptions are applied to the tenant `demo` in the database
(`tulpar apply`, services/accounts/configcode.py) and the workers run with
TULPAR_CONFIG_SUBSCRIPTIONS=0, so they match the database's subscriptions
only and nothing is sent twice. The demo tenant's API key is kept in
var/demo-api-key (mode 0600) and printed at every start.

Ctrl-C, SIGTERM (`docker stop`, systemd) and SIGHUP stop everything, the
children first, and exit 0. A worker, beat, API or redis-server that dies is
restarted; one that keeps dying stops everything with exit code 1. On Linux
the children also stop when `tulpar run` is killed with SIGKILL.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import deque
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

from services.settings import ROOT, Settings

# The rest is imported in `handle`: other `tulpar` commands should start fast.

# Seconds the children get to stop after SIGTERM before SIGKILL: less than
# `docker stop`'s default 10 s, after which Docker would SIGKILL us mid-stop.
GRACE_SECONDS = 8.0
# A child that exits this many times within the window is not restarted again.
RESTART_LIMIT, RESTART_WINDOW = 5, 60.0
# The tenant the config's subscriptions are applied to, and the API's port
# when nothing else listens there.
DEMO_TENANT, API_PORT = "demo", 8000
# Seconds to wait for the API to listen before printing its address anyway.
API_READY_SECONDS = 20.0


class _GiveUp(Exception):
    """A child keeps dying or cannot be restarted: stop everything, exit 1."""


class _StopRequests:
    """Ctrl-C, SIGTERM and SIGHUP only count here; the main loop then stops.

    Raising from the handler instead (as Ctrl-C's KeyboardInterrupt does) can
    land between starting a child and recording it, leaving it running.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.count = 0

    def install(self) -> "_StopRequests":
        for sig in self.SIGNALS:
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame) -> None:
        self.count += 1

    @property
    def requested(self) -> bool:
        return self.count > 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run worker, beat and local stand-ins (the offline demo by default)")
    p.add_argument("--config", help="config YAML (default: config/demo.yaml)")
    p.add_argument("--publish-every", type=float, default=8.0,
                   help="seconds between demo items being published (default 8)")
    p.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--api-port", type=int, default=API_PORT,
                   help=f"port of the API on 127.0.0.1 (default {API_PORT}, or a free one when it is taken; "
                        "0: a free one)")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from services import config as config_mod
    from services.accounts import configcode
    from services.accounts.errors import AccountError
    from services.local.demo import DemoPublisher, DemoRates
    from services.local.http_servers import FileServer, WebhookSink
    from services.local.mail_sink import MailSink
    from services.local.ports import free_port, preferred_port, wait_for_port
    from services.local.redis_process import ChildProcess, RedisProcess
    from services.store import schema

    settings = Settings()
    if args.config:
        settings = settings.model_copy(update={"config": Path(args.config).resolve()})
    var = settings.var_dir
    env = dict(os.environ)
    # Choose ports first: the config may name them, and a bad config must stop
    # us before anything starts. The webhook sink's port is the last run's when
    # it is free: the config's webhook target, and so the demo tenant's channel
    # and its secret, stay the same.
    demo_port, hook_port = free_port(), preferred_port(_last_port(var / "demo-webhook-port"))
    env["TULPAR_DEMO_URL"] = os.environ["TULPAR_DEMO_URL"] = f"http://127.0.0.1:{demo_port}"
    env["TULPAR_DEMO_WEBHOOK"] = os.environ["TULPAR_DEMO_WEBHOOK"] = f"http://127.0.0.1:{hook_port}/hooks/demo"
    try:
        cfg = config_mod.load(settings.config)
        # The same file's subscriptions as `tulpar apply` reads them (with the
        # limits the API sets): refused here, before anything starts.
        desired = configcode.load(settings.config, settings)
    except config_mod.ConfigError as exc:
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2
    # The worker and beat refuse an unmigrated database: `tulpar run` migrates
    # its own (a deployment runs `tulpar db upgrade` before its workers), and
    # like a bad config an unusable database stops us before anything starts.
    try:
        migrated = schema.upgrade(settings.db_url)
    except schema.SchemaError as exc:
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2
    print(f"tulpar: database {migrated.describe(schema.shown(settings.db_url))}")
    try:
        demo = _apply_demo(settings, desired, var)
        var.mkdir(parents=True, exist_ok=True)
        (var / "demo-webhook-port").write_text(f"{hook_port}\n")
    except (schema.SchemaError, AccountError) as exc:
        print(f"tulpar: applying {settings.config} to tenant {DEMO_TENANT}: {exc}", file=sys.stderr)
        return 2

    stop = _StopRequests().install()
    stack: list = []
    children: list[ChildProcess] = []
    redis = None
    try:
        for d in ("mail", "webhooks", "log", "demo-www"):
            (var / d).mkdir(parents=True, exist_ok=True)
        # Alerts of earlier runs are not printed again; taken before any child
        # starts, since the worker may deliver before we get to _watch (the API
        # can take seconds to listen).
        earlier = alert_files(var)
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
            stack.append(redis)  # stopped after the worker, which needs it to finish
            env["REDIS_URL"] = redis.url
        if not os.environ.get("TULPAR_SMTP_HOST"):
            mail = MailSink(var / "mail").start()
            stack.append(mail)
            env["TULPAR_SMTP_HOST"], env["TULPAR_SMTP_PORT"] = mail.host, str(mail.port)
        env["TULPAR_CONFIG"] = str(settings.config)
        # The config's subscriptions live in the database now (tenant demo):
        # the workers match those only, so nothing is sent twice.
        env["TULPAR_CONFIG_SUBSCRIPTIONS"] = "0"
        api_port = preferred_port(args.api_port)
        if not os.environ.get("TULPAR_PUBLIC_URL"):
            # Email confirmation links point at this API.
            env["TULPAR_PUBLIC_URL"] = f"http://127.0.0.1:{api_port}"

        celery = [sys.executable, "-m", "celery", "-A", "workers.app"]
        logs = var / "log"
        # Each child in its own process group (ChildProcess): Ctrl-C at a
        # terminal reaches us only, and we stop the children in order. One
        # worker consumes all three queues (poll, deliver, sweep): enough for
        # the demo; the Procfile runs a pool per kind of task.
        children.append(ChildProcess("worker", celery + [
            "worker", "--loglevel", "INFO", "--concurrency", str(args.concurrency),
            # No neighbours to sync with: mingle would only add a broker
            # round trip at start, one a stop signal cannot cut short (a
            # worker told to stop there, with redis gone, retried on).
            "--without-mingle", "--without-gossip",
            "--hostname", f"tulpar-{os.getpid()}@%h"], logs / "worker.log", env, ROOT).start())
        children.append(ChildProcess("beat", celery + [
            "beat", "--loglevel", "INFO", "--schedule", str(var / "celerybeat-schedule")],
            logs / "beat.log", env, ROOT).start())
        api = ChildProcess("api", [sys.executable, "-m", "services", "api", "--host", "127.0.0.1",
                                   "--port", str(api_port)], logs / "api.log", env, ROOT).start()
        children.append(api)
        _kick_polls(env["REDIS_URL"], cfg)
        print(f"tulpar: running {len(cfg.sources)} sources from {settings.config}; "
              f"{len(desired.subscriptions)} subscriptions of tenant {DEMO_TENANT} "
              f"({demo.applied.diff.counts() if not demo.applied.diff.empty else 'no changes'})")
        _wait_listening(api, api_port, stop, wait_for_port)
        print(f"api: http://127.0.0.1:{api_port}", flush=True)
        print(f"demo API key: {demo.key}", flush=True)
        if not os.environ.get("TULPAR_ADMIN_TOKEN"):
            print("tulpar: TULPAR_ADMIN_TOKEN is unset: creating tenants over the API (POST /v1/tenants) "
                  "is off; set it to turn it on (docs/api.md)")
        print(f"tulpar: alerts arrive in {var / 'mail'} (.eml) and {var / 'webhooks'} (.json); "
              f"logs in {logs}; Ctrl-C stops")
        # A redis-server we started is restarted like the others, on the same
        # port and data dir: worker and beat reconnect to the same URL by
        # themselves, and its AOF brings the queued tasks back (all but the
        # last second's; the outbox sweeper re-enqueues deliveries lost so).
        supervised = children + ([redis] if redis else [])
        return _watch(var, earlier, supervised, stop, publisher, args.publish_every, rates)
    except _GiveUp as exc:
        print(f"tulpar: {exc}", file=sys.stderr)
        return 1
    finally:
        _stop_children(children, stop)
        for thing in reversed(stack):
            thing.stop()
        print("tulpar: stopped")


def _last_port(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _apply_demo(settings: Settings, desired, var: Path):
    """The config's subscriptions applied to the demo tenant; its key."""
    from services.local.demo import demo_tenant
    from services.store import schema

    store = schema.open_migrated(settings.db_url)
    try:
        return demo_tenant(store, DEMO_TENANT, desired, var / "demo-api-key", settings,
                           datetime.now(timezone.utc))
    finally:
        store.dispose()


def _wait_listening(api, port: int, stop: "_StopRequests", wait_for_port) -> None:
    """Until the API listens (or exits, or a stop is asked): the address
    printed next is then one that answers."""
    deadline = time.monotonic() + API_READY_SECONDS
    while time.monotonic() < deadline and not stop.requested and api.exit_code() is None:
        try:
            wait_for_port("127.0.0.1", port, timeout=0.5)
            return
        except TimeoutError:
            continue


def _kick_polls(redis_url: str, cfg) -> None:
    """Poll at once instead of waiting a whole interval for beat's first tick."""
    from services.delivery.queue import Queue

    queue = Queue(redis_url)
    queue.poll([source.name for source in cfg.sources])
    queue.close()


def alert_files(var: Path) -> set[Path]:
    """The alerts the local sinks have written: emails and webhook bodies."""
    return set(var.glob("mail/*.eml")) | set(var.glob("webhooks/*.json"))


def _watch(var: Path, earlier: set[Path], supervised, stop: _StopRequests, publisher,
           publish_every: float, rates=None) -> int:
    """Print alerts as they arrive (all but `earlier`), publish demo items,
    restart dead children; 0 once a stop is requested (raises _GiveUp when a
    child keeps dying)."""
    seen = set(earlier)
    next_publish = time.monotonic() + publish_every
    # Late enough that the worker has started and stored day one first.
    rates_every = max(20.0, 3 * publish_every)
    next_rates = time.monotonic() + rates_every
    deaths: dict[str, deque] = {child.name: deque() for child in supervised}
    while not stop.requested:
        for child in supervised:
            code = child.exit_code()
            # Checked again: a stop may have been asked since the loop began,
            # and with systemd the children get the same SIGTERM as we do.
            if code is not None and not stop.requested:
                _restart(child, code, deaths[child.name])
        for path in sorted(alert_files(var)):
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
    return 0


def _restart(child, code: int, deaths: deque) -> None:
    # Reaping kills what is left of the child's process group first: pool
    # processes of a killed worker must not keep taking and delivering tasks
    # next to the new worker's.
    child.reap()
    now = time.monotonic()
    deaths.append(now)
    while deaths[0] < now - RESTART_WINDOW:
        deaths.popleft()
    if len(deaths) >= RESTART_LIMIT:
        raise _GiveUp(f"{child.name} exited with {code}, {len(deaths)} times within "
                      f"{RESTART_WINDOW:.0f} s; giving up (see {child.log})")
    print(f"tulpar: {child.name} exited with {code}; restarting", file=sys.stderr, flush=True)
    try:
        child.start()
    except (OSError, RuntimeError) as exc:
        raise _GiveUp(f"{child.name} could not be restarted: {exc}") from exc


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


def _stop_children(children, stop: _StopRequests) -> None:
    """SIGTERM to each, up to GRACE_SECONDS for all to exit (Celery's worker
    finishes its running tasks), then SIGKILL for each whole process group.
    Another Ctrl-C or SIGTERM meanwhile cuts the wait short."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    signals_seen = stop.count
    while (any(child.exit_code() is None for child in children)
           and time.monotonic() < deadline and stop.count == signals_seen):
        time.sleep(0.05)
    for child in children:
        if child.exit_code() is None:
            print(f"tulpar: {child.name} still running; killing it", file=sys.stderr)
        child.reap()
