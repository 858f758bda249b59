"""The outbox's own decisions: the retry schedule, giving up, claims and
leases, holding back a slow receiver. A real store (SQLite; PostgreSQL too
when DATABASE_URL is set), a fixed clock, and a fake channel in place of
services.delivery.channels.deliver -- what a real channel raises is tested with the
channels (tests/unit/delivery/channels/)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from services.delivery import channels
from services.delivery import outbox
from services.delivery.channels.errors import PermanentError, RetryableError
from services.delivery.outbox import attempt, deliver_time_limits, jitter, lease, retry_delay
from services.settings import Settings
from services.store.db import NewDelivery
from services.store.models import AttemptOutcome, DeliveryStatus

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
HOOK = "https://hooks.example.com/slow"
OTHER = "https://hooks.example.com/fast"


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeChannel:
    """Answers each send with the next scripted exception (None: success),
    then succeeds; records what it was asked to send."""

    def __init__(self, *script):
        self.script = list(script)
        self.sent: list[tuple[str, str]] = []

    def __call__(self, target, payload, *, settings, idempotency_key, secret=None):
        self.sent.append((target, idempotency_key))
        error = self.script.pop(0) if self.script else None
        if error is not None:
            raise error


@pytest.fixture
def channel(monkeypatch):
    def install(*script) -> FakeChannel:
        fake = FakeChannel(*script)
        monkeypatch.setattr(channels, "deliver", fake)
        return fake
    return install


def settings(schedule: str = "10s,1m,5m", **kw) -> Settings:
    return Settings(retry_schedule=schedule, http_timeout=10, **kw)


def retryable(**kw) -> RetryableError:
    return RetryableError("webhook answered 503 Service Unavailable", target=HOOK, **kw)


def add(store, *channels_, now=T0) -> list[int]:
    return store.commit_poll(
        source="wire", url="http://w/feed", etag=None, last_modified=None, seen_ids=[], now=now,
        deliveries=[NewDelivery(f"key-{n}", "wire", f"a{n}", "sub", target, {"n": n})
                    for n, target in enumerate(channels_)])


# --- the schedule, pure -------------------------------------------------------

DELAYS = [10.0, 60.0, 300.0]
# (case, failed attempt number, Retry-After, expected delay: (low, high) or None to give up)
SCHEDULE = [
    ("first failure: the first delay, jittered", 1, None, (8.0, 12.0)),
    ("third failure: the third delay", 3, None, (240.0, 360.0)),
    ("the last attempt failed: give up", 4, None, None),
    ("Retry-After longer than the schedule wins", 1, 120.0, (120.0, 120.0)),
    ("Retry-After shorter than the schedule: the schedule stands", 2, 5.0, (48.0, 72.0)),
    ("Retry-After capped at a day", 1, 10 * 86400.0, (86400.0, 86400.0)),
    ("Retry-After does not postpone giving up", 4, 60.0, None),
    ("Retry-After 0 changes nothing", 1, 0.0, (8.0, 12.0)),
]


@pytest.mark.parametrize("case, attempts, retry_after, expected", SCHEDULE, ids=[c[0] for c in SCHEDULE])
def test_retry_delay(case, attempts, retry_after, expected):
    delay = retry_delay(attempts, DELAYS, "key-1", retry_after)
    if expected is None:
        assert delay is None
    else:
        low, high = expected
        assert low <= delay <= high


def test_jitter_is_deterministic_bounded_and_spreads_a_burst():
    factors = [jitter(f"key-{n}", a) for n in range(500) for a in (1, 2, 3)]
    assert all(0.8 <= f <= 1.2 for f in factors)
    assert factors == [jitter(f"key-{n}", a) for n in range(500) for a in (1, 2, 3)]  # replayable
    # 500 deliveries failing together come back spread over the whole band.
    assert min(factors) < 0.82 and max(factors) > 1.18
    assert 0.97 < sum(factors) / len(factors) < 1.03
    assert len({round(f, 6) for f in factors}) > 1400
    # A delivery's successive attempts are not all shifted the same way.
    assert jitter("key-1", 1) != jitter("key-1", 2)


@pytest.mark.parametrize("http_timeout", [0.5, 2.0, 10.0, 60.0, 300.0])
def test_time_limits_sit_between_the_send_deadline_and_the_lease(http_timeout):
    s = Settings(http_timeout=http_timeout)
    soft, hard = deliver_time_limits(s)
    # The send gives up at http_timeout; the task is cut after that, and
    # killed before the lease frees the delivery for a second worker.
    assert http_timeout < soft < hard < lease(s).total_seconds()
    assert soft - http_timeout >= 5 and lease(s).total_seconds() - hard >= 5


# --- one attempt, against a real store ---------------------------------------

# (case, what the channel raises, result, status, last error starts with)
OUTCOMES = [
    ("sent", None, AttemptOutcome.SENT, DeliveryStatus.SENT, None),
    ("retryable: try again later", retryable(), AttemptOutcome.RETRY, DeliveryStatus.RETRYING,
     "webhook answered 503"),
    ("permanent: failed at once", PermanentError("webhook answered 404 Not Found", target=HOOK),
     AttemptOutcome.FAILED, DeliveryStatus.FAILED, "webhook answered 404"),
]


@pytest.mark.parametrize("case, error, result, status, last_error", OUTCOMES, ids=[c[0] for c in OUTCOMES])
def test_one_attempt(store, channel, case, error, result, status, last_error):
    fake = channel(error)
    [i] = add(store, HOOK)
    clock = Clock(T0 + timedelta(seconds=1))
    assert attempt(store, i, settings(), clock) == result
    d = store.delivery(i)
    assert (d.status, d.attempts, d.lease_until) == (status, 1, None)
    assert fake.sent == [(HOOK, "key-0")]
    assert (d.last_error or "").startswith(last_error or "")
    assert [a.outcome for a in store.attempts(i)] == [result]
    if result == AttemptOutcome.RETRY:
        assert d.next_attempt_at == clock.now + timedelta(seconds=retry_delay(1, DELAYS, "key-0"))
    if result == AttemptOutcome.SENT:
        assert d.delivered_at == clock.now


def test_gives_up_after_max_attempts_and_not_one_before(store, channel):
    s = settings("1s,2s")  # three attempts
    fake = channel(retryable(), retryable(), retryable(), None)
    [i] = add(store, HOOK)
    clock, results = Clock(), []
    for _ in range(3):
        results.append(attempt(store, i, s, clock))
        clock.now = store.delivery(i).next_attempt_at
    assert results == [AttemptOutcome.RETRY, AttemptOutcome.RETRY, AttemptOutcome.FAILED]
    d = store.delivery(i)
    assert d.status == DeliveryStatus.FAILED and d.attempts == 3
    assert d.last_error.startswith("gave up after 3 attempts: webhook answered 503")
    # Given up is final: a copy still on the queue does not send it again.
    assert attempt(store, i, s, Clock(clock.now + timedelta(days=1))) == AttemptOutcome.SKIPPED
    assert len(fake.sent) == 3


def test_retry_after_from_the_receiver_sets_the_next_attempt(store, channel):
    channel(retryable(retry_after=3600.0))
    [i] = add(store, HOOK)
    attempt(store, i, settings(), Clock())
    assert store.delivery(i).next_attempt_at == T0 + timedelta(hours=1)
    assert attempt(store, i, settings(), Clock(T0 + timedelta(minutes=59))) == AttemptOutcome.SKIPPED


def test_default_schedule_keeps_trying_for_about_three_days(store, channel, monkeypatch):
    monkeypatch.delenv("TULPAR_RETRY_SCHEDULE", raising=False)
    s = Settings()
    assert s.max_attempts == 11
    fake = channel(*[retryable()] * 20)
    [i] = add(store, HOOK)
    clock, times = Clock(), []
    while (d := store.delivery(i)).status != DeliveryStatus.FAILED:
        clock.now = d.next_attempt_at
        times.append(clock.now)
        attempt(store, i, s, clock)
    assert len(fake.sent) == 11 and d.last_error.startswith("gave up after 11 attempts")
    span = times[-1] - times[0]
    # Nominally 69 h 35 min; the jitter moves it by at most 20%.
    assert timedelta(hours=55) < span < timedelta(hours=84)
    # Each wait is exactly the pure schedule's: the store adds nothing.
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    assert gaps == pytest.approx([retry_delay(n, s.retry_delays, "key-0") for n in range(1, 11)], abs=1e-5)


# --- claims and leases ---------------------------------------------------------

def test_a_claim_another_worker_holds_is_skipped_until_its_lease_runs_out(store, channel):
    fake = channel()
    s = settings()
    [i] = add(store, HOOK)
    assert store.claim(i, T0, lease(s)) is not None  # another worker is sending it
    assert attempt(store, i, s, Clock(T0 + timedelta(seconds=1))) == AttemptOutcome.SKIPPED
    assert fake.sent == [] and store.delivery(i).attempts == 1
    # That worker died: once the lease ran out, the delivery is due and taken.
    after = T0 + lease(s) + timedelta(seconds=1)
    assert i in store.due(after, timedelta(minutes=2))
    assert attempt(store, i, s, Clock(after)) == AttemptOutcome.SENT
    assert store.delivery(i).attempts == 2 and len(fake.sent) == 1


def test_a_send_cut_by_the_task_time_limit_loses_nothing(store, channel):
    # SoftTimeLimitExceeded is what Celery raises in the task; the hard limit
    # kills it outright. Either way nothing is recorded and the row waits.
    channel(SoftTimeLimitExceeded())
    s = settings()
    [i] = add(store, HOOK)
    with pytest.raises(SoftTimeLimitExceeded):
        attempt(store, i, s, Clock())
    assert store.delivery(i).status == DeliveryStatus.SENDING
    assert store.due(T0 + lease(s) - timedelta(seconds=1), timedelta(minutes=2)) == []
    after = T0 + lease(s) + timedelta(seconds=1)
    assert store.due(after, timedelta(minutes=2)) == [i]
    assert attempt(store, i, s, Clock(after)) == AttemptOutcome.SENT


def test_a_delivery_that_kills_every_attempt_is_given_up(store, channel):
    s = settings("1s,2s")  # three attempts
    fake = channel(*[SoftTimeLimitExceeded()] * 3)
    [i] = add(store, HOOK)
    clock = Clock()
    for _ in range(3):
        with pytest.raises(SoftTimeLimitExceeded):
            attempt(store, i, s, clock)
        clock.now += lease(s) + timedelta(seconds=1)
    assert attempt(store, i, s, clock) == AttemptOutcome.FAILED
    d = store.delivery(i)
    assert d.status == DeliveryStatus.FAILED and len(fake.sent) == 3
    assert d.last_error.startswith("gave up after 3 attempts: the last one did not finish")


# --- a slow receiver -----------------------------------------------------------

@pytest.mark.parametrize("slow", [True, False], ids=["slow: the others wait", "fast failure: they don't"])
def test_a_slow_receiver_holds_back_its_other_deliveries(store, channel, slow):
    fake = channel(retryable(slow=slow))
    s = settings()
    first, waiting, later, elsewhere, done = add(store, HOOK, HOOK, HOOK, OTHER, HOOK)
    store.mark_enqueued([first, waiting, later, elsewhere, done], T0)
    # `later` already waits longer than the slow one will; `done` was sent.
    store.claim(later, T0, lease(s))
    store.record_attempt(later, outcome="retry", now=T0, error="x", retry_at=T0 + timedelta(hours=1))
    store.claim(done, T0, lease(s))
    store.record_attempt(done, outcome="sent", now=T0)

    assert attempt(store, first, s, Clock()) == AttemptOutcome.RETRY
    retry_at = store.delivery(first).next_attempt_at
    held = store.delivery(waiting)
    if not slow:
        assert held.next_attempt_at == T0 and attempt(store, waiting, s, Clock()) == AttemptOutcome.SENT
        return
    # One UPDATE moved it: same retry time, nothing counted, off the queue.
    assert (held.status, held.attempts, held.next_attempt_at, held.enqueued_at) == (
        DeliveryStatus.PENDING, 0, retry_at, None)
    assert store.delivery(later).next_attempt_at == T0 + timedelta(hours=1)  # not pulled earlier
    assert store.delivery(elsewhere).next_attempt_at == T0  # another receiver
    assert store.delivery(done).status == DeliveryStatus.SENT
    # Its copy already on the queue is skipped, the other receiver is not.
    assert attempt(store, waiting, s, Clock()) == AttemptOutcome.SKIPPED
    assert attempt(store, elsewhere, s, Clock()) == AttemptOutcome.SENT
    assert fake.sent == [(HOOK, "key-0"), (OTHER, "key-3")]
    # When the retry time comes the sweeper enqueues both again.
    requeue = timedelta(minutes=2)
    assert waiting not in store.due(retry_at - timedelta(seconds=1), requeue)
    assert {first, waiting} <= set(store.due(retry_at, requeue))
    assert attempt(store, waiting, s, Clock(retry_at)) == AttemptOutcome.SENT


def test_sweep_enqueues_what_is_due_and_marks_it(store):
    a, b = add(store, HOOK, OTHER)
    queued: list[int] = []
    assert outbox.sweep(store, queued.extend, T0, timedelta(minutes=2)) == [a, b]
    assert queued == [a, b]
    assert outbox.sweep(store, queued.extend, T0 + timedelta(seconds=5), timedelta(minutes=2)) == []
    assert store.delivery(a).enqueued_at == T0
