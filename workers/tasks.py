"""Thin tasks: decode ids, load, call one domain function, log the outcome.
Only names and ids cross the queue."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded

from services import polling
from services.delivery import outbox
from services.delivery.outbox import utcnow
from services.delivery.queue import DELIVER_TASK, POLL_TASK, SWEEP_TASK
from services.news import archive
from workers.app import app
from workers.runtime import Runtime, runtime

log = logging.getLogger("tulpar.tasks")

# Stored articles past TULPAR_RETENTION_DAYS are deleted by the sweep, at
# most this often per worker process (seconds).
PURGE_EVERY = 600.0
_last_purge: float | None = None  # time.monotonic() of this process's last purge


@app.task(name=POLL_TASK)
def poll_source(source_name: str) -> str:
    rt = runtime()
    # A subscription created, changed or deleted since the last poll counts
    # for this one.
    subscriptions = rt.subscriptions_now()
    try:
        source = rt.config.source(source_name)
    except KeyError:
        log.warning("poll %s: no such source in %s (config changed?)", source_name, rt.config.path)
        return "unknown source"
    report = polling.poll_source(source, subscriptions, rt.store, rt.queue, rt.settings, utcnow)
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
    now = utcnow()
    ids = outbox.sweep(rt.store, rt.queue.deliver, now, timedelta(seconds=rt.settings.requeue_after))
    if ids:
        log.info("sweep: enqueued %d due deliveries", len(ids))
    purge_articles(rt, now)
    return len(ids)


def purge_articles(rt: Runtime, now: datetime, clock=time.monotonic) -> int | None:
    """Delete the stored articles older than the retention, unless this
    process did so less than PURGE_EVERY ago (then None). A failure is
    logged and tried again PURGE_EVERY later: the sweep itself goes on."""
    global _last_purge
    at = clock()
    if _last_purge is not None and at - _last_purge < PURGE_EVERY:
        return None
    _last_purge = at
    try:
        purged = archive.purge(rt.store, now, rt.settings.retention_days)
    except Exception:  # a locked or unreachable database: next time
        log.exception("purging stored articles failed; trying again in %.0f s", PURGE_EVERY)
        return None
    if purged:
        log.info("purged %d stored articles older than %d days", purged, rt.settings.retention_days)
    return purged
