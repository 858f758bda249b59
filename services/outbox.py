"""Delivering what the pipeline wrote to the outbox (the delivery table).

`attempt` is one try of one delivery: claim it, hand the rendered payload to
its channel, record the outcome. The channel decides retry-or-give-up by the
type of error it raises; this module only turns that into a schedule.
`sweep` finds deliveries that should be on the queue but may not be (never
enqueued after a crash, lost with a Redis restart, held by a killed worker,
due for a retry) so nothing written is ever lost.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Callable

from services import channels
from services.channels.errors import PermanentError, RetryableError
from services.redact import redact
from services.settings import Settings
from services.store import Store

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def backoff(attempts: int, base: float, retry_after: float | None = None, cap: float = 3600.0) -> float:
    """Seconds before the next try: base, 2*base, 4*base ... capped; a server's
    Retry-After wins when it asks for longer."""
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    return max(delay, retry_after or 0.0)


def lease(settings: Settings) -> timedelta:
    # Long enough for one send (connect + write + answer) with a margin; a
    # worker killed mid-send frees the delivery when this runs out.
    return timedelta(seconds=settings.http_timeout * 3)


def attempt(store: Store, delivery_id: int, settings: Settings,
            clock: Callable[[], datetime] = utcnow) -> str:
    """One try. Returns sent | retry | failed | skipped (not due, or taken)."""
    delivery = store.claim(delivery_id, clock(), lease(settings))
    if delivery is None:
        return "skipped"
    where = f"delivery {delivery.id} to {redact(delivery.channel)}"
    try:
        channels.deliver(delivery.channel, delivery.payload, settings=settings,
                         idempotency_key=delivery.idempotency_key)
    except RetryableError as exc:
        now = clock()
        if delivery.attempts >= settings.max_attempts:
            store.record_attempt(delivery.id, outcome="failed", now=now,
                                 error=f"gave up after {delivery.attempts} attempts: {exc}")
            log.warning("%s: gave up after %d attempts: %s", where, delivery.attempts, exc)
            return "failed"
        delay = backoff(delivery.attempts, settings.retry_base_seconds, getattr(exc, "retry_after", None))
        store.record_attempt(delivery.id, outcome="retry", now=now, error=str(exc),
                             retry_at=now + timedelta(seconds=delay))
        log.info("%s: attempt %d failed, retry in %.1fs: %s", where, delivery.attempts, delay, exc)
        return "retry"
    except PermanentError as exc:
        store.record_attempt(delivery.id, outcome="failed", now=clock(), error=str(exc))
        log.warning("%s: failed for good: %s", where, exc)
        return "failed"
    store.record_attempt(delivery.id, outcome="sent", now=clock())
    log.info("%s: sent (attempt %d)", where, delivery.attempts)
    return "sent"


def sweep(store: Store, enqueue: Callable[[list[int]], None], now: datetime,
          requeue_after: timedelta) -> list[int]:
    ids = store.due(now, requeue_after)
    if ids:
        enqueue(ids)
        store.mark_enqueued(ids, now)
    return ids
