"""Thin tasks: decode ids, load, call one domain function, log the outcome.
Only names and ids cross the queue."""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded

from services import polling
from services.delivery import outbox
from services.delivery.outbox import utcnow
from services.delivery.queue import DELIVER_TASK, POLL_GATE, POLL_TASK, SWEEP_LOCK, SWEEP_TASK
from services.news import archive
from workers.app import app, time_limits
from workers.runtime import Runtime, runtime

log = logging.getLogger("tulpar.tasks")

# Stored articles past TULPAR_RETENTION_DAYS are deleted by the sweep, at
# most this often per worker process (seconds).
PURGE_EVERY = 600.0
_last_purge: float | None = None  # time.monotonic() of this process's last purge


@app.task(name=POLL_TASK)
def poll_source(source_name: str) -> str:
    try:
        return _poll(source_name)
    finally:
        # Whatever the outcome: beat may send this source's next poll now
        # (workers/beat.py holds a gate per source while one is queued or
        # running). Only the gate this poll was sent under is released --
        # a poll sent by `tulpar poll` or a test leaves beat's alone.
        release_poll_gate(source_name, poll_source.request.id)


def release_poll_gate(source_name: str, task_id: str | None) -> None:
    if not task_id:
        return  # called directly, not as a task: no gate to release
    try:
        runtime().queue.release(POLL_GATE + source_name, task_id)
    except Exception:  # Redis unreachable: the gate's TTL frees it
        log.warning("poll %s: could not release its gate; it expires on its own", source_name, exc_info=True)


def _poll(source_name: str) -> str:
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
    # One sweep at a time, across all workers: two at once would enqueue the
    # same ids twice. The lock lasts as long as a sweep may (its hard time
    # limit), so one killed mid-sweep frees it.
    token = str(uuid.uuid4())
    ttl = time_limits(rt.base_settings)[SWEEP_TASK]["time_limit"]
    if not rt.queue.acquire(SWEEP_LOCK, token, ttl):
        log.info("sweep: another sweep is running; skipped")
        return 0
    try:
        now = utcnow()
        ids = outbox.sweep(rt.store, lambda due: rt.queue.deliver(due, at=now), now,
                           timedelta(seconds=rt.settings.requeue_after), queue=rt.queue)
        if ids:
            log.info("sweep: enqueued %d due deliveries", len(ids))
        purge_articles(rt, now)
        return len(ids)
    finally:
        rt.queue.release(SWEEP_LOCK, token)


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
