"""What a route handler works with: the store, the settings, the time of
the request, the acting tenant, and the queue (best effort)."""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime

from fastapi import Depends, Request

from services.accounts.errors import NotFound
from services.api import auth
from services.redact import redact_text
from services.settings import Settings
from services.store import Store
from services.store.models import Tenant

log = logging.getLogger(__name__)

# Our ids are prefix_hex; anything else in a path cannot name an object (and
# must not reach the database: PostgreSQL refuses NUL in text, for one).
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class Enqueuer:
    """Puts delivery ids on the workers' queue, best effort: when Redis does
    not answer, the outbox sweeper sends them within seconds anyway, so a
    failure is logged (redacted) and the request carries on."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self._queue = None
        self._lock = threading.Lock()  # a kombu producer is not thread-safe

    def deliver(self, delivery_ids: list[int]) -> None:
        if not delivery_ids or not self.redis_url:
            return
        from services.delivery.queue import Queue

        with self._lock:
            try:
                if self._queue is None:
                    self._queue = Queue(self.redis_url)
                self._queue.deliver(delivery_ids)
            except Exception as exc:  # kombu's and the transport's errors alike
                log.warning("could not enqueue deliveries %s (%s: %s); the sweeper will send them",
                            delivery_ids, type(exc).__name__, redact_text(str(exc)))
                self._close()

    def _close(self) -> None:
        if self._queue is not None:
            try:
                self._queue.close()
            except Exception:
                pass
            self._queue = None

    def close(self) -> None:
        with self._lock:
            self._close()


@dataclass(frozen=True)
class Context:
    store: Store
    settings: Settings
    now: datetime
    queue: Enqueuer
    tenant: Tenant | None = None

    @property
    def tenant_id(self) -> str:
        assert self.tenant is not None
        return self.tenant.id


def public(request: Request) -> Context:
    state = request.app.state
    return Context(state.store, state.settings, state.clock(), state.queue)


def of_tenant(request: Request, tenant: Tenant = Depends(auth.tenant)) -> Context:
    state = request.app.state
    return Context(state.store, state.settings, state.clock(), state.queue, tenant)


def path_id(value: str, what: str) -> str:
    """An id from the path; one that cannot be ours is simply not found."""
    if not _ID.match(value):
        raise NotFound(f"no {what} {value[:64]!r}")
    return value
