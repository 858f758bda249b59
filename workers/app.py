"""The Celery app: `celery -A workers.app worker` / `celery -A workers.app beat`.

Importing it reads nothing: Celery asks for its configuration (`celery_config`,
from the environment's settings) when it first needs it, and the config file
is never read here -- beat follows it (workers/beat.py); a worker that takes
the poll queue loads it and the subscriptions once, in its parent before the
pool forks, and each pool process follows changes (workers/runtime.py).
"""
from __future__ import annotations

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from services.delivery.outbox import deliver_time_limits
from services.delivery.queue import (DELIVER_TASK, POLL_QUEUE, POLL_TASK, QUEUES, ROUTES, SWEEP_TASK,
                                     declaration)
from services.logs import redact_handlers
from services.settings import Settings

# Redis hands an unacknowledged task (acks_late) to another worker after this
# long: every hard time limit stays well below it, so a task still running is
# never run twice at once.
VISIBILITY_TIMEOUT = 3600


def celery_config(settings: Settings) -> dict:
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set: workers need a Redis broker "
                           "(`tulpar run` starts one for you)")
    return {
        "broker_url": settings.redis_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        # A task is acknowledged only when it finished: a killed worker's task
        # goes back to the queue instead of vanishing.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        # Every task has a finite time limit (see time_limits): a hung task
        # would otherwise hold its pool slot, and its delivery's lease, forever.
        "task_annotations": time_limits(settings),
        # The queues and routes of services/delivery/queue.py, which the
        # clients publish to without Celery.
        "task_routes": {task: {"queue": queue} for task, queue in ROUTES.items()},
        "task_default_queue": POLL_QUEUE,
        "task_queues": tuple(declaration(name) for name in QUEUES),
        # Beat's entries come from the config file, and follow its edits.
        "beat_scheduler": "workers.beat:ConfigScheduler",
        "timezone": "UTC",
    }


def time_limits(settings: Settings) -> dict[str, dict[str, float]]:
    """Soft and hard time limits per task, derived from the settings.

    deliver: from services.delivery.outbox, so that the limits sit above the send's
    own deadline (http_timeout) and below the claim's lease -- a delivery is
    never claimed by a second worker while the first may still be sending.
    A task that hits its soft limit raises inside the send and records
    nothing; one that hits the hard limit is killed and acknowledged. Either
    way the row stays `sending` until the lease runs out, then the sweeper
    enqueues it again: the time limit costs a retry, never the alert.

    poll: one fetch (bounded by http_timeout) plus parsing, matching and
    rendering a feed of up to max_feed_bytes, and one commit that may wait for
    a SQLite lock (30 s); generous, because a poll cut short is only redone at
    the next interval, but finite, so a wedged poll frees its worker.

    sweep: a few queries and up to a thousand enqueues; a sweep cut short is
    redone sweep_interval later.
    """
    soft, hard = deliver_time_limits(settings)
    poll_soft = min(60.0 + 10 * settings.http_timeout, VISIBILITY_TIMEOUT / 4)
    sweep_soft = min(60.0 + 5 * settings.sweep_interval, VISIBILITY_TIMEOUT / 4)
    return {
        DELIVER_TASK: {"soft_time_limit": soft, "time_limit": hard},
        POLL_TASK: {"soft_time_limit": poll_soft, "time_limit": poll_soft + 30},
        SWEEP_TASK: {"soft_time_limit": sweep_soft, "time_limit": sweep_soft + 30},
    }


app = Celery("tulpar", include=["workers.tasks"])
app.add_defaults(lambda: celery_config(Settings()))
# Celery installs its own log handlers when a worker or beat starts: they
# redact like every other handler (services/logs.py).
after_setup_logger.connect(redact_handlers, weak=False)
after_setup_task_logger.connect(redact_handlers, weak=False)
