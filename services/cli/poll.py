"""`tulpar poll --once`: one poll of every source, then exit (cron, tests)."""
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
    from services.classify import Classifier
    from services.settings import Settings
    from services.store import Store

    settings = Settings()
    if args.config:
        settings = settings.model_copy(update={"config": args.config})
    try:
        cfg = config_mod.load(settings.config)
    except config_mod.ConfigError as exc:
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2
    store = Store(settings.db_url)
    store.create_schema()
    classifier = Classifier(cfg.subscriptions)
    queue = None
    if settings.redis_url:
        from services.queue import Queue

        queue = Queue(settings.redis_url)
    while True:
        failed = poll_all(cfg, classifier, store, settings, queue)
        if args.once:
            return 1 if failed else 0
        time.sleep(min((s.interval for s in cfg.sources), default=settings.poll_interval))


def poll_all(cfg, classifier, store, settings, queue) -> int:
    from services import pipeline, pipeline_fx
    from services.outbox import utcnow

    failed = 0
    fx_subs = pipeline_fx.fx_subscriptions(cfg.subscriptions)
    for source in cfg.sources:
        if source.kind in pipeline_fx.RATE_KINDS:  # rate files: the currency pipeline
            report = pipeline_fx.poll_rates(source, fx_subs, store, settings, utcnow())
        else:
            report = pipeline.poll_news(source, classifier, store, settings, utcnow())
        failed += bool(report.error)
        if report.delivery_ids and queue is not None:
            try:
                queue.deliver(report.delivery_ids)
                store.mark_enqueued(report.delivery_ids, utcnow())
            except Exception as exc:  # the outbox keeps them; a worker's sweeper sends them
                print(f"tulpar: could not reach the queue ({exc}); deliveries stay in the outbox",
                      file=sys.stderr)
        print(report.summary(), file=sys.stderr if report.error else sys.stdout)
    if queue is None:
        print("REDIS_URL is not set: deliveries wait in the outbox until a worker's sweeper sends them",
              file=sys.stderr)
    return failed
