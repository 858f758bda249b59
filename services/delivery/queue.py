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
Redis, an LPUSH onto the list the worker pops (BRPOP: oldest first). Only ids
and names travel; payloads wait in the database.

A batch of messages (one poll's deliveries, one sweep's) goes in one Redis
round trip: kombu's publish batch, a pipeline of LPUSHes. Each message also
carries the time it was enqueued (header `tulpar_enqueued_at`, seconds since
the epoch; a worker ignores it), the same time the outbox records as the
delivery's enqueued_at: the sweeper reads the oldest waiting message's with
LINDEX and so tells a delivery still waiting its turn from a lost one
(services/delivery/outbox.py).

The same Redis also holds the workers' small coordination keys: the poll
gates (beat sends a source's next poll only when its last one finished) and
the sweep lock (one sweep at a time), both SET NX with a TTL and released only
by their holder.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import kombu
from kombu.exceptions import KombuError

DELIVER_TASK = "tulpar.deliver"
POLL_TASK = "tulpar.poll_source"
SWEEP_TASK = "tulpar.sweep"
DELIVER_QUEUE = "deliver"
POLL_QUEUE = "poll"
SWEEP_QUEUE = "sweep"
QUEUES = (POLL_QUEUE, DELIVER_QUEUE, SWEEP_QUEUE)
# Polls, deliveries and the sweep on separate queues: a burst of deliveries
# must not hold back the next poll, nor a backed-up poll queue the sweep
# (measured: docs/performance.md). A worker consumes all three unless started
# with -Q; the Procfile runs a poll worker (-Q poll) and a deliver worker
# (-Q deliver,sweep), each with its own pool.
ROUTES = {DELIVER_TASK: DELIVER_QUEUE, POLL_TASK: POLL_QUEUE, SWEEP_TASK: SWEEP_QUEUE}

# The header that carries a message's enqueue time (seconds since the epoch).
ENQUEUED_AT = "tulpar_enqueued_at"
# Redis keys of the coordination state (see the module's docstring).
POLL_GATE = "tulpar:poll-gate:"  # + source name; value: the poll's task id
SWEEP_LOCK = "tulpar:sweep-lock"
SWEEP_HEADS = "tulpar:sweep-heads"  # the deliver queue's head, as seen by past sweeps
HEADS_KEPT = 512
# Messages per pipeline round trip.
BATCH = 1000
# Deletes KEYS[1] only while it holds ARGV[1]: a holder whose key ran out
# and was taken by another never releases the other's.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


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


@dataclass(frozen=True)
class Head:
    """The oldest message still waiting on a queue: `empty`, or its enqueue
    time `at` (None when it carries none: published by someone else)."""

    empty: bool
    at: datetime | None = None


def _epoch(at: datetime) -> float:
    return at.timestamp()


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), timezone.utc)


class Queue:
    """A broker connection that puts tasks on the workers' queues. Connects on
    first use; one per process (a connection is not shared across a fork)."""

    def __init__(self, broker_url: str):
        # Connecting retries as Celery's client does (RETRY_POLICY), not for
        # connect_timeout's whole span.
        self.connection = kombu.Connection(broker_url, connect_timeout=CONNECT_TIMEOUT,
                                           transport_options=dict(RETRY_POLICY))
        self.producer = kombu.Producer(self.connection)
        # Declared once per connection, as the workers declare them.
        self.queues = {name: declaration(name) for name in QUEUES}

    def deliver(self, ids: list[int], at: datetime | None = None) -> None:
        self.send(DELIVER_TASK, [[int(i)] for i in ids], at)

    def poll(self, source_names: list[str]) -> None:
        self.send(POLL_TASK, [[str(name)] for name in source_names])

    def send(self, task: str, calls: list[list], at: datetime | None = None) -> None:
        """One message per argument list, BATCH of them per round trip, each
        stamped with `at` (default: now); raises when the broker cannot be
        reached (kombu's OperationalError or the transport's own error),
        after Celery's client retry policy (about a second). A batch whose
        round trip failed is sent again whole: a message may then be on the
        queue twice, which the claim makes harmless."""
        queue = self.queues[ROUTES[task]]
        stamp = _epoch(at) if at is not None else time.time()
        messages = [task_message(task, args) for args in calls]
        for start in range(0, len(messages), BATCH):
            self._retrying(lambda: self._publish(queue, messages[start:start + BATCH], stamp))

    def _publish(self, queue: kombu.Queue, messages: list[TaskMessage], stamp: float) -> None:
        self.producer.maybe_declare(queue)
        with self.producer.batch(max_size=BATCH + 1):
            for message in messages:
                self.producer.publish(
                    message.body, exchange="", routing_key=queue.name,
                    serializer="json", headers={**message.headers, ENQUEUED_AT: stamp},
                    delivery_mode=PERSISTENT, **message.properties)

    def _retrying(self, action):
        """action(), and once more if the broker's connection failed (the
        connection itself is retried as RETRY_POLICY says: about a second)."""
        errors = tuple(self.connection.connection_errors) + (KombuError, OSError)
        try:
            return action()
        except kombu.exceptions.OperationalError:
            raise  # could not connect, retries included
        except errors:
            self.connection.close()  # a connection that broke: a fresh one, once
        try:
            return action()
        except KombuError as exc:
            # kombu's batch error wraps the transport's ("Connection
            # refused"): raise that, it says what went wrong.
            if isinstance(exc.__cause__, Exception):
                raise exc.__cause__ from None
            raise

    # --- what the sweeper and beat need from Redis ---------------------------
    @property
    def redis(self):
        """The redis-py client of this connection (Redis is the only broker
        tulpar runs on)."""
        return self.connection.default_channel.client

    def head(self, queue: str = DELIVER_QUEUE) -> Head:
        """The oldest message waiting on `queue` (the list's right end)."""
        raw = self._retrying(lambda: self.redis.lindex(queue, -1))
        if raw is None:
            return Head(empty=True)
        try:
            stamp = json.loads(raw)["headers"][ENQUEUED_AT]
            return Head(empty=False, at=_from_epoch(stamp))
        except (ValueError, KeyError, TypeError):
            return Head(empty=False)

    def remember_head(self, now: datetime, head: Head) -> None:
        """Record what a sweep saw at `now`: the time before which every
        message had left the deliver queue (`now` when it was empty)."""
        passed = now if head.empty else head.at
        entry = json.dumps([_epoch(now), None if passed is None else _epoch(passed)])
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(SWEEP_HEADS, entry)
            pipe.ltrim(SWEEP_HEADS, 0, HEADS_KEPT - 1)
            pipe.execute()

    def head_as_of(self, when: datetime) -> tuple[bool, datetime | None]:
        """(known, passed): what the newest sweep at or before `when` saw.
        known False when no sweep recorded that far back; passed None when
        the head then carried no enqueue time."""
        for raw in self.redis.lrange(SWEEP_HEADS, 0, -1):  # newest first
            seen_at, passed = json.loads(raw)
            if seen_at <= _epoch(when):
                return True, None if passed is None else _from_epoch(passed)
        return False, None

    def acquire(self, key: str, token: str, ttl: float) -> bool:
        """SET key token NX, expiring after `ttl` seconds: True if taken."""
        return bool(self.redis.set(key, token, nx=True, px=max(1, int(ttl * 1000))))

    def release(self, key: str, token: str) -> bool:
        """Delete `key` if it still holds `token`."""
        return bool(self.redis.eval(_RELEASE, 1, key, token))

    def release_all(self, prefix: str) -> int:
        """Delete every key starting with `prefix`, whoever holds it; how many."""
        keys = list(self.redis.scan_iter(match=prefix + "*", count=1000))
        return int(self.redis.delete(*keys)) if keys else 0

    def close(self) -> None:
        self.connection.release()
