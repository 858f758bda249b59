"""A tenant's deliveries: what was sent where, how it went, and replay."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from services.accounts.errors import Invalid, NotFound
from services.accounts.subscriptions import decode_cursor, encode_cursor
from services.redact import redact, redact_text
from services.store import Store
from services.store.models import Attempt, Delivery, DeliveryStatus

PAGE = 50


def to_json(d: Delivery) -> dict:
    """What a tenant sees of a delivery: never the payload's secrets (there
    are none) nor a target's userinfo or tokens (redacted)."""
    return {"id": d.id, "subscription": d.subscription_id, "subscription_name": d.subscription,
            "channel": d.channel_id, "target": redact(d.channel), "status": str(d.status),
            "attempts": d.attempts, "item": {"source": d.item_source, "id": d.item_id},
            "created_at": d.created_at.isoformat(),
            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.status == DeliveryStatus.RETRYING else None,
            "last_error": redact_text(d.last_error) if d.last_error else None}


def page(store: Store, tenant_id: str, subscription_id: str | None = None, after: str | None = None,
         limit: int = PAGE) -> tuple[list[Delivery], str | None]:
    """Newest first; the cursor is the last id shown (opaque to clients)."""
    q = select(Delivery).where(Delivery.tenant_id == tenant_id)
    if subscription_id is not None:
        q = q.where(Delivery.subscription_id == subscription_id)
    if after:
        cursor = decode_cursor(after)
        # An INTEGER column: 32 bits on PostgreSQL, which refuses a larger number.
        if not cursor.isdigit() or int(cursor) > 2**31 - 1:
            raise Invalid("not a cursor this API gave out", field="cursor")
        q = q.where(Delivery.id < int(cursor))
    with store.sessions() as s:
        rows = list(s.scalars(q.order_by(Delivery.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(str(rows[-1].id)) if more else None


def get(store: Store, tenant_id: str, delivery_id: int) -> Delivery:
    with store.sessions() as s:
        row = s.scalar(select(Delivery).where(Delivery.id == delivery_id, Delivery.tenant_id == tenant_id))
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    return row


def attempts(store: Store, tenant_id: str, delivery_id: int) -> list[Attempt]:
    get(store, tenant_id, delivery_id)
    return store.attempts(delivery_id)


def replay(store: Store, tenant_id: str, delivery_id: int, now: datetime) -> Delivery:
    """Send a delivery again: back to pending with a fresh retry schedule
    (its earlier attempts stay in its history). One that is being sent
    right now is left alone -- it is already happening. The caller
    enqueues the id; the sweeper would within seconds anyway."""
    with store.sessions.begin() as s:
        row = s.scalar(select(Delivery).where(Delivery.id == delivery_id, Delivery.tenant_id == tenant_id))
        if row is None:
            raise NotFound(f"no delivery {delivery_id}")
        if row.status != DeliveryStatus.SENDING:
            row.status, row.attempts, row.next_attempt_at = DeliveryStatus.PENDING, 0, now
            row.enqueued_at = row.lease_until = None
        return row
