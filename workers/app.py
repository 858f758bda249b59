"""The Celery app: `celery -A workers.app worker` / `celery -A workers.app beat`."""
from __future__ import annotations

from celery import Celery
from kombu import Queue

from services import config as config_mod
from services.queue import DELIVER_QUEUE, DELIVER_TASK, POLL_QUEUE, POLL_TASK
from services.settings import Settings


def make_app(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: workers need a Redis broker "
                           "(`tulpar run` starts one for you)")
    app = Celery("tulpar", broker=settings.redis_url, include=["workers.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A task is acknowledged only when it finished: a killed worker's task
        # goes back to the queue instead of vanishing.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": 3600},
        # Polls and deliveries on separate queues: a burst of deliveries must
        # not hold back the next poll (measured: docs/performance.md). A worker
        # consumes both unless started with -Q.
        task_routes={DELIVER_TASK: {"queue": DELIVER_QUEUE},
                     POLL_TASK: {"queue": POLL_QUEUE},
                     "tulpar.sweep": {"queue": POLL_QUEUE}},
        task_default_queue=POLL_QUEUE,
        task_queues=(Queue(POLL_QUEUE), Queue(DELIVER_QUEUE)),
        beat_schedule=beat_schedule(settings),
        timezone="UTC",
    )
    return app


def beat_schedule(settings: Settings) -> dict:
    schedule = {
        "sweep-outbox": {"task": "tulpar.sweep", "schedule": settings.sweep_interval},
    }
    cfg = config_mod.load(settings.config)
    for source in cfg.sources:
        schedule[f"poll:{source.name}"] = {
            "task": "tulpar.poll_source", "schedule": source.interval, "args": [source.name],
        }
    return schedule


app = make_app(Settings())
