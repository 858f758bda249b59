"""services/delivery/queue.py puts tasks on Redis without Celery, as messages
Celery's own client would send and a worker accepts; the worker app routes
by the same names."""
from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import kombu
import pytest
from celery import Celery
from celery.worker.request import Request

from brokers import taken
from services.delivery import queue as q
from services.local.ports import free_port
from services.settings import ROOT, Settings


# (task, args): every task a client sends (beat sends the sweep, with Celery).
TASKS = [
    (q.DELIVER_TASK, [7]),
    (q.DELIVER_TASK, [2**40]),
    (q.POLL_TASK, ["wire"]),
    (q.POLL_TASK, ["новости-kz"]),
]


@pytest.mark.parametrize("task, args", TASKS)
def test_the_message_is_the_one_celery_itself_builds(task, args):
    # Celery's own protocol-2 builder is the reference, called as send_task
    # called it before (the task's own ignore_result setting decides; no
    # reply_to, as we ask for no results).
    celery = Celery("reference", set_as_current=False)
    ours = q.task_message(task, args, task_id="3f1c2b", origin="gen1@host")
    headers, properties, body, _ = celery.amqp.as_task_v2("3f1c2b", task, args, origin="gen1@host",
                                                          ignore_result=None)
    assert ours.headers == headers
    assert ours.properties == properties
    assert ours.body == body


def test_deliver_and_poll_land_on_their_queues_as_messages_a_worker_accepts(broker, worker_app):
    queue = q.Queue(broker)
    queue.deliver([3, 4])
    queue.poll(["wire"])
    queue.close()
    on = {name: taken(broker, name) for name in q.QUEUES}
    assert [len(on[q.DELIVER_QUEUE]), len(on[q.POLL_QUEUE]), len(on[q.SWEEP_QUEUE])] == [2, 1, 0]
    expected = {q.DELIVER_QUEUE: [(q.DELIVER_TASK, [3]), (q.DELIVER_TASK, [4])],
                q.POLL_QUEUE: [(q.POLL_TASK, ["wire"])], q.SWEEP_QUEUE: []}
    for name, messages in on.items():
        requests = [Request(m, app=worker_app) for m in messages]
        assert [(r.task_name, r.args) for r in requests] == expected[name]
        for m, r in zip(messages, requests):
            assert (m.content_type, m.properties["delivery_mode"]) == ("application/json", 2)
            assert r.kwargs == {} and r.id == m.headers["id"] == m.properties["correlation_id"]
            assert m.delivery_info["routing_key"] == name


class RoundTrips:
    """Counts the writes to Redis (one per round trip: a pipeline is one)."""

    def __init__(self, monkeypatch):
        import redis.connection

        self.count = 0
        real = redis.connection.AbstractConnection.send_packed_command

        def counted(conn, command, check_health=True):
            self.count += 1
            return real(conn, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)


# (deliveries enqueued at once, round trips at most): one per BATCH of them.
BATCHES = [(1, 1), (2, 1), (999, 1), (q.BATCH, 1), (q.BATCH + 1, 2), (2500, 3)]


@pytest.mark.parametrize("n, trips", BATCHES, ids=[f"{n} deliveries" for n, _ in BATCHES])
def test_a_batch_goes_in_one_round_trip_and_reads_back_as_a_worker_reads_it(broker, worker_app, monkeypatch,
                                                                           n, trips):
    queue = q.Queue(broker)
    queue.deliver([1])  # connected and the queue declared
    taken(broker, q.DELIVER_QUEUE)
    writes = RoundTrips(monkeypatch)
    at = datetime(2026, 11, 27, 12, 0, 0, 250000, tzinfo=timezone.utc)
    ids = list(range(10, 10 + n))
    queue.deliver(ids, at=at)
    assert writes.count <= trips
    monkeypatch.undo()
    messages = taken(broker, q.DELIVER_QUEUE)
    requests = [Request(m, app=worker_app) for m in messages]
    # Oldest first, as a worker pops them; each one Celery's message.
    assert [(r.task_name, r.args) for r in requests] == [(q.DELIVER_TASK, [i]) for i in ids]
    assert len({r.id for r in requests}) == n
    assert {m.headers[q.ENQUEUED_AT] for m in messages} == {at.timestamp()}
    queue.close()


def test_the_head_is_the_oldest_waiting_message_and_its_enqueue_time(broker):
    queue = q.Queue(broker)
    assert queue.head() == q.Head(empty=True)
    first = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    queue.deliver([1, 2], at=first)
    queue.deliver([3], at=first + timedelta(seconds=5))
    assert queue.head() == q.Head(empty=False, at=first)
    with kombu.Connection(broker) as conn:  # a worker takes two
        for _ in range(2):
            conn.default_channel.basic_get(q.DELIVER_QUEUE, no_ack=True)
    assert queue.head() == q.Head(empty=False, at=first + timedelta(seconds=5))
    taken(broker, q.DELIVER_QUEUE)
    # One published by someone else (Celery's own client) carries no time.
    Celery("other", broker=broker, set_as_current=False).send_task(q.DELIVER_TASK, [9], queue=q.DELIVER_QUEUE)
    assert queue.head() == q.Head(empty=False, at=None)
    queue.close()


def test_a_lock_is_taken_once_released_only_by_its_holder_and_expires(broker):
    queue = q.Queue(broker)
    assert queue.acquire("tulpar:test", "a", ttl=0.3)
    assert not queue.acquire("tulpar:test", "b", ttl=0.3)
    assert not queue.release("tulpar:test", "b")  # not b's to release
    assert queue.release("tulpar:test", "a")
    assert queue.acquire("tulpar:test", "b", ttl=0.3)
    time.sleep(0.4)  # b's ran out: a takes it, and b's late release leaves it
    assert queue.acquire("tulpar:test", "a", ttl=5)
    assert not queue.release("tulpar:test", "b")
    assert not queue.acquire("tulpar:test", "c", ttl=5)
    queue.close()


def test_the_worker_app_routes_each_task_to_the_queue_clients_publish_on(broker, worker_app):
    assert {queue.name for queue in worker_app.amqp.queues.values()} == set(q.QUEUES)
    for task, queue_name in q.ROUTES.items():
        assert worker_app.amqp.router.route({}, task)["queue"].name == queue_name, task
    for queue in worker_app.amqp.queues.values():  # declared alike on both sides
        assert queue == q.declaration(queue.name)


def test_an_unreachable_broker_raises_within_seconds():
    queue = q.Queue(f"redis://127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    with pytest.raises(Exception, match="refused"):
        queue.deliver([1])
    assert time.monotonic() - started < 5  # Celery's retry policy: about a second


def test_the_app_is_built_without_reading_anything(tmp_path):
    """Importing the app reads neither the config file nor the environment:
    a worker's parent or beat starts even while the config file is missing."""
    code = ("import workers.app, workers.tasks, workers.beat\n"
            "from workers.app import app\n"
            "assert not app.configured\n"
            "print(app.conf.broker_url, app.conf.beat_scheduler)\n")
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://127.0.0.1:1/0",
           "TULPAR_CONFIG": str(tmp_path / "missing.yaml"), "TULPAR_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:1/0", "workers.beat:ConfigScheduler"]


def test_without_redis_url_the_worker_says_so():
    from workers.app import celery_config

    with pytest.raises(RuntimeError, match="REDIS_URL is not set"):
        celery_config(Settings().model_copy(update={"redis_url": ""}))

