"""services/delivery/queue.py puts tasks on Redis without Celery, as messages
Celery's own client would send and a worker accepts; the worker app routes
by the same names."""
from __future__ import annotations

import subprocess
import sys
import time

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
    assert [len(on[q.DELIVER_QUEUE]), len(on[q.POLL_QUEUE])] == [2, 1]
    expected = {q.DELIVER_QUEUE: [(q.DELIVER_TASK, [3]), (q.DELIVER_TASK, [4])],
                q.POLL_QUEUE: [(q.POLL_TASK, ["wire"])]}
    for name, messages in on.items():
        requests = [Request(m, app=worker_app) for m in messages]
        assert [(r.task_name, r.args) for r in requests] == expected[name]
        for m, r in zip(messages, requests):
            assert (m.content_type, m.properties["delivery_mode"]) == ("application/json", 2)
            assert r.kwargs == {} and r.id == m.headers["id"] == m.properties["correlation_id"]
            assert m.delivery_info["routing_key"] == name


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

