"""Thin tasks: decode ids, load, call one domain function, log the outcome.
Only names and ids cross the queue."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded

from services import polling
from services.delivery import outbox
from services.delivery.outbox import utcnow
from services.delivery.queue import DELIVER_TASK, POLL_TASK, SWEEP_TASK
from workers.app import app
from workers.runtime import runtime

log = logging.getLogger("tulpar.tasks")


@app.task(name=POLL_TASK)
def poll_source(source_name: str) -> str:
    rt = runtime()
    try:
        source = rt.config.source(source_name)
    except KeyError:
        log.warning("poll %s: no such source in %s (config changed?)", source_name, rt.config.path)
        return "unknown source"
    report = polling.poll_source(source, rt.subscriptions, rt.store, rt.queue, rt.settings, utcnow)
    if report.queue_error:
        log.warning("could not enqueue %d deliveries (%s); the sweeper will retry",
                    len(report.delivery_ids), report.queue_error)
    log.info("poll %s", report.summary())
    return report.summary()


@app.task(name=DELIVER_TASK)
def deliver(delivery_id: int) -> str:
    rt = runtime()
    try:
        return str(outbox.attempt(rt.store, int(delivery_id), rt.settings))
    except SoftTimeLimitExceeded:
        # Over the task's time limit (workers/app.py) with nothing recorded:
        # the row stays `sending` until its lease runs out, then the sweeper
        # enqueues it again. Logged without a traceback: it is not a bug here.
        log.warning("delivery %s: over the task time limit; retried when its lease runs out", delivery_id)
        return "timed out"


@app.task(name=SWEEP_TASK)
def sweep() -> int:
    rt = runtime()
    ids = outbox.sweep(rt.store, rt.queue.deliver, utcnow(),
                       timedelta(seconds=rt.settings.requeue_after))
    if ids:
        log.info("sweep: enqueued %d due deliveries", len(ids))
    return len(ids)
