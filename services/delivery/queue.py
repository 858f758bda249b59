"""Tasks on the workers' queues, without Celery (services/ runs without it).

The task and queue names are defined here, once, for the Celery app
(workers/app.py routes and consumes by them) and for its clients (`tulpar
poll`, `tulpar run`, the sweeper). A message is what Celery's own client
publishes -- task message protocol version 2 (celery.app.amqp.AMQP.as_task_v2),
serialised as JSON -- sent with kombu, the messaging library Celery itself
sends with:

    headers     {"lang": "py", "task": NAME, "id": ID, "root_id": ID, "retries": 0, ...}
    properties  correlation_id = ID, reply_to, delivery_mode 2 (persistent)
    body        [args, kwargs, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]

to the default exchange ("") with the queue's name as the routing key: on
Redis, an LPUSH onto the list the worker pops. Only ids and names travel;
payloads wait in the database.
"""
from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import kombu

DELIVER_TASK = "tulpar.deliver"
POLL_TASK = "tulpar.poll_source"
SWEEP_TASK = "tulpar.sweep"
DELIVER_QUEUE = "deliver"
POLL_QUEUE = "poll"
QUEUES = (POLL_QUEUE, DELIVER_QUEUE)
# Polls and deliveries on separate queues: a burst of deliveries must not
# hold back the next poll (measured: docs/performance.md). A worker consumes
# both unless started with -Q.
ROUTES = {DELIVER_TASK: DELIVER_QUEUE, POLL_TASK: POLL_QUEUE, SWEEP_TASK: POLL_QUEUE}


def declaration(name: str) -> kombu.Queue:
    """A queue as the workers and their clients declare it: bound to a direct
    exchange of its own name (a message still goes straight to the queue)."""
    return kombu.Queue(name, kombu.Exchange(name, type="direct"), routing_key=name)


PERSISTENT = 2  # delivery_mode
# Celery's client defaults (task_publish_retry_policy, broker_connection_timeout):
# a lost connection is retried 3 times within about a second, then raised.
RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 1}
CONNECT_TIMEOUT = 4.0


@dataclass(frozen=True)
class TaskMessage:
    headers: dict
    properties: dict
    body: tuple  # (args, kwargs, embed)


def task_message(task: str, args: list, task_id: str | None = None, origin: str | None = None) -> TaskMessage:
    """The protocol-2 message that runs `task(*args)` on a worker."""
    task_id = task_id or str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],  # the worker's own limits apply (workers/app.py)
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(list(args)),
        "kwargsrepr": "{}",
        "origin": origin or f"gen{os.getpid()}@{socket.gethostname()}",
        "ignore_result": None,  # the task's own setting decides
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    properties = {"correlation_id": task_id, "reply_to": ""}
    embed = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
    return TaskMessage(headers, properties, (list(args), {}, embed))


class Queue:
    """A broker connection that puts tasks on the workers' queues. Connects on
    first use; one per process (a connection is not shared across a fork)."""

    def __init__(self, broker_url: str):
        self.connection = kombu.Connection(broker_url, connect_timeout=CONNECT_TIMEOUT)
        self.producer = kombu.Producer(self.connection)
        # Declared once per connection, as the workers declare them.
        self.queues = {name: declaration(name) for name in QUEUES}

    def deliver(self, ids: list[int]) -> None:
        self.send(DELIVER_TASK, [[int(i)] for i in ids])

    def poll(self, source_names: list[str]) -> None:
        self.send(POLL_TASK, [[str(name)] for name in source_names])

    def send(self, task: str, calls: list[list]) -> None:
        """One message per argument list; raises when the broker cannot be
        reached (kombu's OperationalError or the transport's own error)."""
        queue = self.queues[ROUTES[task]]
        for args in calls:
            message = task_message(task, args)
            self.producer.publish(
                message.body, exchange="", routing_key=queue.name, declare=[queue],
                serializer="json", headers=message.headers, delivery_mode=PERSISTENT,
                retry=True, retry_policy=RETRY_POLICY, **message.properties)

    def close(self) -> None:
        self.connection.release()
