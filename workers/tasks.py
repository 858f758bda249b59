"""Thin tasks: decode ids, load, call one domain function, log the outcome.
Only names and ids cross the queue."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded

from services.delivery import outbox
from services.news import pipeline
from services.fx import pipeline as pipeline_fx
from services.delivery.outbox import utcnow
from services.delivery.queue import DELIVER_TASK, POLL_TASK
from workers.app import SWEEP_TASK, app
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
    if source.kind in pipeline_fx.RATE_KINDS:
        report = pipeline_fx.poll_rates(source, rt.fx_subscriptions, rt.store, rt.settings, utcnow())
    else:
        report = pipeline.poll_news(source, rt.classifier, rt.store, rt.settings, utcnow())
    enqueue(rt, report.delivery_ids)
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


def enqueue(rt, ids: list[int]) -> None:
    if not ids:
        return
    try:
        rt.queue.deliver(ids)
    except Exception as exc:  # broker down: the rows wait in the outbox for the sweeper
        log.warning("could not enqueue %d deliveries (%s); the sweeper will retry", len(ids), exc)
        return
    rt.store.mark_enqueued(ids, utcnow())
