"""`tulpar poll --once`: one poll of every source, then exit (cron, tests).
Matches the same subscriptions as the workers: the config file's and the
tenants' (services/accounts/live.py)."""
from __future__ import annotations

import sys
import time

# Heavy imports (SQLAlchemy, feedparser) wait inside the handler: every
# `tulpar` command would otherwise pay for them at start.


def register(sub) -> None:
    p = sub.add_parser("poll", help="poll every source once and queue the alerts")
    p.add_argument("--once", action="store_true", help="poll once and exit (default: loop)")
    p.add_argument("--config", help="config YAML (default: $TULPAR_CONFIG or config/demo.yaml)")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from services import config as config_mod
    from services.accounts.live import Live
    from services.settings import Settings
    from services.store import schema

    settings = Settings()
    if args.config:
        settings = settings.model_copy(update={"config": args.config})
    try:
        cfg = config_mod.load(settings.config, settings)
    except config_mod.ConfigError as exc:
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2
    settings = config_mod.settings_for(cfg, settings)  # as the workers do
    try:
        store = schema.open_migrated(settings.db_url)
    except schema.SchemaError as exc:  # not migrated, or no database at all
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2
    # The config file's subscriptions (unless TULPAR_CONFIG_SUBSCRIPTIONS is
    # off) and the tenants' in the database, as the workers match them.
    live = Live(store, cfg.subscriptions if settings.config_subscriptions else ())
    queue = None
    if settings.redis_url:
        from services.delivery.queue import Queue

        queue = Queue(settings.redis_url)
    while True:
        live.refresh()
        failed = poll_all(cfg, live.subscriptions, store, settings, queue)
        if args.once:
            return 1 if failed else 0
        time.sleep(min((s.interval for s in cfg.sources), default=settings.poll_interval))


def poll_all(cfg, subscriptions, store, settings, queue) -> int:
    """Poll every source once; returns how many failed. Each source is on its
    own: one that fails -- even with an error nobody expected -- is reported
    and the sources after it are still polled."""
    failed = 0
    for source in cfg.sources:
        try:
            failed += poll_one(source, subscriptions, store, settings, queue)
        except Exception as exc:
            failed += 1
            report_crash(source, store, exc)
    if queue is None:
        print("REDIS_URL is not set: deliveries wait in the outbox until a worker's sweeper sends them",
              file=sys.stderr)
    return failed


def poll_one(source, subscriptions, store, settings, queue) -> bool:
    """One source: poll, enqueue, print the summary. True when it failed."""
    from services import polling
    from services.delivery.outbox import utcnow

    report = polling.poll_source(source, subscriptions, store, queue, settings, utcnow)
    if report.queue_error:  # the outbox keeps them; a worker's sweeper sends them
        print(f"tulpar: could not reach the queue ({report.queue_error}); deliveries stay in the outbox",
              file=sys.stderr)
    print(report.summary(), file=sys.stderr if report.error else sys.stdout)
    return bool(report.error)


def report_crash(source, store, exc: Exception) -> None:
    """A bug or an unforeseen failure in one source: one redacted line on
    stderr (a URL in the message may carry a token), and the source marked
    failing so `tulpar status` shows it too."""
    from services.delivery.outbox import utcnow
    from services.redact import redact_text

    message = redact_text(f"unexpected error: {type(exc).__name__}: {exc}")
    print(f"{source.name}: FAILED {message}", file=sys.stderr)
    try:
        store.record_source_error(source.name, source.url, message, utcnow())
    except Exception as again:  # e.g. the database itself is what failed
        print(f"tulpar: could not record the error of {source.name}: {type(again).__name__}",
              file=sys.stderr)
