"""Delivering what the pipeline wrote to the outbox (the delivery table).

`attempt` is one try of one delivery: claim it, hand the rendered payload to
its channel, record the outcome. The channel decides retry-or-give-up by the
type of error it raises; this module only turns that into a schedule
(`retry_delay`, pure). `sweep` finds deliveries that should be on the queue
but may not be (never enqueued after a crash, lost with a Redis restart, held
by a killed worker, due for a retry) so nothing written is ever lost.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from services.delivery import channels
from services.delivery.channels.errors import PermanentError, RetryableError
from services.redact import redact
from services.settings import Settings
from services.store import Store
from services.store.models import GAVE_UP, AttemptOutcome

log = logging.getLogger(__name__)

# Each scheduled delay is spread over +-20%: deliveries that failed together
# (a receiver's outage) come back spread out instead of as one burst.
JITTER = 0.2
# A receiver's Retry-After is honoured when it asks for longer than the
# schedule, up to a day: a bogus "come back next year" must not park an alert.
MAX_RETRY_AFTER = 24 * 3600.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def jitter(key: str, attempt: int) -> float:
    """A factor in [1 - JITTER, 1 + JITTER], the same for the same delivery
    and attempt (so a decision can be replayed and tested), different across
    deliveries (so a burst spreads)."""
    digest = hashlib.sha256(f"{key}\x1f{attempt}".encode("utf-8")).digest()
    unit = int.from_bytes(digest[:8], "big") / 2 ** 64  # uniform in [0, 1)
    return 1.0 - JITTER + 2 * JITTER * unit


def retry_delay(attempts: int, delays: Sequence[float], key: str,
                retry_after: float | None = None) -> float | None:
    """Seconds to wait after attempt number `attempts` failed retryably, or
    None when that was the last one (len(delays) + 1 attempts in all).
    delays[attempts - 1], jittered; a Retry-After wins when longer (capped)."""
    if attempts > len(delays):
        return None
    delay = delays[max(attempts, 1) - 1] * jitter(key, attempts)
    if retry_after:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


# One send's own deadline is settings.http_timeout (the channels enforce it
# and raise RetryableError(slow=True) when they hit it). Around it, in order:
# the deliver task's soft time limit, its hard limit, then the claim's lease.
# The lease must outlast the hard limit: while a worker may still be sending,
# no one else may claim the delivery (or the alert goes out twice at once);
# once the worker is killed, the lease running out frees it for the sweeper.
def _margin(settings: Settings) -> float:
    # Room for what the deadline does not cover: DNS, the claim and the
    # record (a SQLite writer may wait on a lock), the pool's own reaction.
    return max(5.0, settings.http_timeout)


def deliver_time_limits(settings: Settings) -> tuple[float, float]:
    """(soft, hard) Celery time limits of the deliver task, in seconds."""
    margin = _margin(settings)
    return settings.http_timeout + margin, settings.http_timeout + 2 * margin


def lease(settings: Settings) -> timedelta:
    # A worker killed mid-send (or by the hard time limit) frees the
    # delivery when this runs out.
    return timedelta(seconds=settings.http_timeout + 3 * _margin(settings))


def attempt(store: Store, delivery_id: int, settings: Settings,
            clock: Callable[[], datetime] = utcnow) -> AttemptOutcome:
    """One try. Returns sent | retry | failed | skipped (not due, or taken)."""
    delivery = store.claim(delivery_id, clock(), lease(settings))
    if delivery is None:
        return AttemptOutcome.SKIPPED
    where = f"delivery {delivery.id} to {redact(delivery.channel)}"
    max_attempts = settings.max_attempts
    if delivery.attempts > max_attempts:
        # Claimed again after its last attempt never finished (the worker was
        # killed, or hit its time limit, every time): stop rather than loop.
        error = f"{GAVE_UP} {max_attempts} attempts: the last one did not finish (worker lost or timed out)"
        store.record_attempt(delivery.id, outcome=AttemptOutcome.FAILED, now=clock(), error=error)
        log.warning("%s: %s", where, error)
        return AttemptOutcome.FAILED
    try:
        send(store, delivery, settings)
    except RetryableError as exc:
        now = clock()
        delay = retry_delay(delivery.attempts, settings.retry_delays, delivery.idempotency_key,
                            exc.retry_after)
        if delay is None:
            error = f"{GAVE_UP} {delivery.attempts} attempts: {exc}"
            store.record_attempt(delivery.id, outcome=AttemptOutcome.FAILED, now=now, error=error)
            log.warning("%s: %s", where, error)
            return AttemptOutcome.FAILED
        retry_at = now + timedelta(seconds=delay)
        store.record_attempt(delivery.id, outcome=AttemptOutcome.RETRY, now=now, error=str(exc),
                             retry_at=retry_at)
        log.info("%s: attempt %d failed, retry in %.1fs: %s", where, delivery.attempts, delay, exc)
        if exc.slow:
            # The receiver let the send run into its deadline: each of its
            # other deliveries would hold a worker as long, starving every
            # other receiver. They wait for this one's retry instead.
            held = store.hold_back(delivery.channel, retry_at, besides=delivery.id)
            if held:
                log.info("%s: slow receiver, %d more deliveries held back %.1fs", where, held, delay)
        return AttemptOutcome.RETRY
    except PermanentError as exc:
        store.record_attempt(delivery.id, outcome=AttemptOutcome.FAILED, now=clock(), error=str(exc))
        log.warning("%s: failed for good: %s", where, exc)
        return AttemptOutcome.FAILED
    store.record_attempt(delivery.id, outcome=AttemptOutcome.SENT, now=clock())
    log.info("%s: sent (attempt %d)", where, delivery.attempts)
    return AttemptOutcome.SENT


CHANNEL_DELETED = "channel deleted"


def send(store: Store, delivery, settings: Settings) -> None:
    """Hand the delivery to its channel. A tenant's channel (channel_id) is
    looked up now: its webhook is signed with its own secret, read here and
    never copied into the payload or a log line; one deleted since the alert
    was written is a PermanentError. The config file's go as they are,
    signed with TULPAR_WEBHOOK_SECRET."""
    extra = {}
    if delivery.channel_id is not None:
        channel = store.channel(delivery.channel_id)
        if channel is None:
            raise PermanentError(f"{CHANNEL_DELETED}: channel {delivery.channel_id} no longer exists, "
                                 "so this alert is not sent", target=delivery.channel)
        extra["secret"] = channel.secret or ""
    channels.deliver(delivery.channel, delivery.payload, settings=settings,
                     idempotency_key=delivery.idempotency_key, **extra)


# Clocks of the processes that enqueue (whose times the messages carry) and
# of the sweeper may differ by this much: a delivery is judged off the queue
# only when it was enqueued this long before the head.
CLOCK_SKEW = timedelta(seconds=2)
# A delivery committed but not yet enqueued (the poll is between its commit
# and its LPUSH, or crashed there, or found the broker down) is the sweeper's
# only once it is this old (at most requeue_after): before, it is most likely
# on its way to the queue already.
ENQUEUE_GRACE = timedelta(seconds=30)


def lost_before(queue, now: datetime, requeue_after: timedelta) -> datetime:
    """The enqueue time before which a delivery still waiting for its attempt
    is lost rather than waiting its turn.

    The deliver queue is a FIFO list: every message enqueued before the one
    now at its head (the oldest still waiting) has been taken by a worker.
    A delivery taken is either held by a worker -- claimed within moments,
    or waiting in its prefetch for a free pool slot -- or lost (a worker
    killed before its claim). So: lost when it had already left the queue
    requeue_after ago and still has no claim -- the head then, as a sweep
    recorded it (queue.head_as_of). Until sweeps have recorded that far back
    (first start, or a Redis that lost its data, queue and records alike),
    the test is the weaker "enqueued more than requeue_after ago and no
    longer waiting". A message that carries no enqueue time at the head
    (published by someone else) leaves only the old rule: enqueued more than
    requeue_after ago."""
    stale = now - requeue_after
    head = queue.head()
    queue.remember_head(now, head)
    passed_now = now if head.empty else head.at
    if passed_now is None:
        return stale
    known, passed_then = queue.head_as_of(stale)
    if known and passed_then is not None:
        return min(passed_then, passed_now) - CLOCK_SKEW
    return min(stale, passed_now - CLOCK_SKEW)


def sweep(store: Store, enqueue: Callable[[list[int]], None], now: datetime,
          requeue_after: timedelta, queue=None) -> list[int]:
    """Enqueue what should be on the deliver queue but is not: never enqueued
    (older than ENQUEUE_GRACE), due for a retry, held by a worker whose lease
    ran out, or lost. With `queue` (services.delivery.queue.Queue: the deliver
    queue's head and the past sweeps' record of it) a delivery still waiting
    its turn is told from a lost one (lost_before); without, anything enqueued
    more than requeue_after ago is taken for lost. `enqueue` must stamp its
    messages with `now` (Queue.deliver(ids, at=now))."""
    if queue is None:
        ids = store.due(now, requeue_after)
    else:
        ids = store.due(now, requeue_after, lost_before=lost_before(queue, now, requeue_after),
                        fresh_grace=min(ENQUEUE_GRACE, requeue_after))
    if ids:
        enqueue(ids)
        store.mark_enqueued(ids, now)
    return ids
