"""Thin tasks: decode ids, load, call one domain function, log the outcome.
Only names and ids cross the queue."""
from __future__ import annotations

import logging
from datetime import timedelta

from services import outbox, pipeline, pipeline_fx
from services.outbox import utcnow
from workers.app import app
from workers.runtime import runtime

log = logging.getLogger("tulpar.tasks")


@app.task(name="tulpar.poll_source")
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


@app.task(name="tulpar.deliver")
def deliver(delivery_id: int) -> str:
    rt = runtime()
    return outbox.attempt(rt.store, int(delivery_id), rt.settings)


@app.task(name="tulpar.sweep")
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
