"""The sweeper tells a lost delivery from one waiting its turn
(services/delivery/outbox.py: lost_before), on a real redis-server and a real
store: each case enqueues, takes off the queue as a worker does, claims,
loses the queue..., sweeping every 30 s as beat would, and says which sweeps
enqueue the delivery again. And one sweep at a time (workers/tasks.py)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import kombu
import pytest
import redis

from brokers import taken
from services.delivery import outbox
from services.delivery import queue as q
from services.delivery.outbox import lease
from services.settings import Settings
from services.store.db import NewDelivery

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
REQUEUE = timedelta(seconds=120)
SETTINGS = Settings(http_timeout=10)  # lease: 40 s


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class World:
    """One delivery `a` (and a later `b`), the deliver queue, the sweeper."""

    def __init__(self, store, broker):
        self.store, self.broker = store, broker
        self.queue = q.Queue(broker)
        self.a, self.b = self.store.commit_poll(
            source="wire", url="http://w/feed", etag=None, last_modified=None, seen_ids=[], now=T0,
            deliveries=[NewDelivery(f"key-{n}", "wire", f"a{n}", "sub", "https://hooks.example.com/x", {})
                        for n in range(2)])
        self.swept: dict[float, list[int]] = {}

    def enqueue(self, ids, seconds):  # what polling.enqueue does
        self.queue.deliver(ids, at=at(seconds))
        self.store.mark_enqueued(ids, at(seconds))

    def take(self, n=1):  # a worker pops the oldest n (and holds them)
        with kombu.Connection(self.broker) as conn:
            for _ in range(n):
                assert conn.default_channel.basic_get(q.DELIVER_QUEUE, no_ack=True) is not None

    def claim(self, seconds):
        assert self.store.claim(self.a, at(seconds), lease(SETTINGS)) is not None

    def sweep(self, seconds):
        now = at(seconds)
        self.swept[seconds] = outbox.sweep(self.store, lambda ids: self.queue.deliver(ids, at=now), now,
                                           REQUEUE, queue=self.queue)

    def sweeps(self, start, stop):  # beat's sweep, every 30 s
        for s in range(start, stop + 1, 30):
            self.sweep(s)

    def again(self) -> list[float]:
        """The sweeps that enqueued `a` again."""
        return [s for s, ids in self.swept.items() if self.a in ids]


def waiting_in_a_long_queue(w):
    w.enqueue([w.a], 0)
    w.enqueue([w.b], 60)
    w.sweeps(30, 600)  # ten minutes in the queue: never "lost"


def taken_and_being_sent(w):
    w.enqueue([w.a], 0)
    w.sweeps(30, 270)
    w.take()
    w.claim(280)
    w.sweeps(300, 300)  # its lease (40 s) holds


def taken_after_a_long_wait_held_by_a_worker(w):
    w.enqueue([w.a], 0)
    w.sweeps(30, 600)
    w.take()  # at ~600 s, into a worker's prefetch: waits for a free pool slot
    w.sweeps(630, 690)  # left the queue less than requeue_after ago: a worker has it


def taken_by_a_worker_killed_before_its_claim(w):
    w.enqueue([w.a], 0)
    w.sweeps(30, 600)
    w.take()
    w.sweeps(630, 780)  # out of the queue for requeue_after, never claimed: lost


def killed_worker_lease_ran_out(w):
    w.enqueue([w.a], 0)
    w.take()
    w.claim(1)
    w.sweeps(30, 60)  # lease until 41 s


def redis_restart_lost_queue_and_records(w):
    w.enqueue([w.a], 0)
    w.sweeps(30, 60)
    redis.Redis.from_url(w.broker).flushall()
    w.sweeps(90, 150)  # nothing recorded any more: enqueued > requeue_after ago and not waiting


def deliver_queue_lost_records_kept(w):
    w.enqueue([w.a], 0)
    w.sweeps(30, 60)
    redis.Redis.from_url(w.broker).delete(q.DELIVER_QUEUE)
    w.sweeps(90, 240)  # lost once a sweep saw the queue past it requeue_after ago


def crash_between_commit_and_enqueue(w):
    w.sweeps(0, 30)  # never enqueued: its poll may be enqueueing it (ENQUEUE_GRACE 30 s)


def retry_due(w):
    w.enqueue([w.a], 0)
    w.take()
    w.claim(1)
    w.store.record_attempt(w.a, outcome="retry", now=at(2), error="503", retry_at=at(50))
    w.sweeps(30, 60)  # due at 50 s: at once, no grace


def head_published_by_someone_else(w):
    from celery import Celery

    Celery("other", broker=w.broker, set_as_current=False).send_task(q.DELIVER_TASK, [0], queue=q.DELIVER_QUEUE)
    w.enqueue([w.a], 0)
    w.sweeps(30, 150)  # the head carries no time: the old rule, requeue_after


# (case, sweeps -- at seconds after T0 -- that enqueue `a` again)
CASES = [
    (waiting_in_a_long_queue, []),
    (taken_and_being_sent, []),
    (taken_after_a_long_wait_held_by_a_worker, []),
    (taken_by_a_worker_killed_before_its_claim, [750]),  # seen gone at 630, + requeue_after
    (killed_worker_lease_ran_out, [60]),
    (redis_restart_lost_queue_and_records, [150]),
    (deliver_queue_lost_records_kept, [210]),  # seen gone at 90, + requeue_after
    (crash_between_commit_and_enqueue, [30]),
    (retry_due, [60]),
    (head_published_by_someone_else, [150]),
]


@pytest.mark.parametrize("case, expected", CASES, ids=[c.__name__ for c, _ in CASES])
def test_the_sweeper_enqueues_a_lost_delivery_and_leaves_a_waiting_one(store, broker, case, expected):
    w = World(store, broker)
    case(w)
    assert w.again() == expected, w.swept
    if expected:  # and on the queue again, stamped with that sweep's time
        stamps = [m.headers.get(q.ENQUEUED_AT) for m in taken(broker, q.DELIVER_QUEUE)]
        assert at(expected[0]).timestamp() in stamps
        assert store.delivery(w.a).enqueued_at == at(expected[0])
    w.queue.close()


def test_the_old_rule_re_enqueued_what_was_only_waiting(store, broker):
    """Without the queue's view (queue=None), the rule before issue 13: a
    delivery waiting longer than requeue_after is enqueued again."""
    w = World(store, broker)
    w.enqueue([w.a], 0)
    assert w.a in outbox.sweep(store, w.queue.deliver, at(121), REQUEUE)
    assert [m.headers["argsrepr"] for m in taken(broker, q.DELIVER_QUEUE)].count(f"[{w.a}]") == 2
    w.queue.close()


# --- one sweep at a time -------------------------------------------------------

CONFIG = "sources: []\nsubscriptions: []\n"


@pytest.fixture
def tasks(tmp_path, monkeypatch, var_db, broker):
    from workers import runtime as rt_mod

    path = tmp_path / "tulpar.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("TULPAR_CONFIG", str(path))
    monkeypatch.setenv("REDIS_URL", broker)
    monkeypatch.setattr(rt_mod, "_current", None)
    from workers import tasks

    monkeypatch.setattr(tasks, "_last_purge", 0.0)
    monkeypatch.setattr(tasks, "purge_articles", lambda rt, now: None)
    yield tasks
    if rt_mod._current is not None:
        rt_mod._current.store.dispose()
        rt_mod._current.queue.close()
    rt_mod._current = None


def test_a_sweep_while_another_runs_is_skipped_and_the_lock_outlives_no_sweep(tasks, broker, caplog, monkeypatch):
    from workers import runtime as rt_mod
    from workers.app import time_limits

    rt = rt_mod.runtime()
    [i] = rt.store.commit_poll(source="wire", url="u", etag=None, last_modified=None, seen_ids=[],
                               now=datetime.now(timezone.utc) - timedelta(minutes=5),
                               deliveries=[NewDelivery("k", "wire", "a", "sub", "https://h.example.com/", {})])
    # Another sweep holds the lock: this one does nothing.
    assert rt.queue.acquire(q.SWEEP_LOCK, "other", ttl=60)
    with caplog.at_level(logging.INFO, logger="tulpar.tasks"):
        assert tasks.sweep() == 0
    assert "another sweep is running" in caplog.text
    assert taken(broker, q.DELIVER_QUEUE) == []
    # The other sweep finished (or its lock ran out): this one runs, and
    # releases the lock whatever happens.
    rt.queue.release(q.SWEEP_LOCK, "other")
    assert tasks.sweep() == 1
    assert [m.headers["argsrepr"] for m in taken(broker, q.DELIVER_QUEUE)] == [f"[{i}]"]
    assert redis.Redis.from_url(broker).get(q.SWEEP_LOCK) is None

    def boom(*a, **kw):
        raise RuntimeError("database gone")

    monkeypatch.setattr(outbox, "sweep", boom)
    with pytest.raises(RuntimeError):
        tasks.sweep()
    assert redis.Redis.from_url(broker).get(q.SWEEP_LOCK) is None
    # A killed sweep's lock lasts no longer than a sweep may run.
    ttl = time_limits(rt.base_settings)[q.SWEEP_TASK]["time_limit"]
    assert 0 < ttl <= 600
