"""A tenant's subscriptions: a news query (docs/rules.md) or an FX rule
(docs/fx.md), sent to some of its channels. Every create, change and delete
appends to the change log in the same transaction; workers read the log to
update their index incrementally (live.py)."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services import rules
from services.accounts import ids
from services.accounts.errors import Conflict, Invalid, NotFound
from services.rules import nodes
from services.store import Store
from services.store.models import Channel, SubscriptionChange, SubscriptionChannel, TenantSubscription

MAX_NAME = 200
MAX_QUERY_CHARS = 2000
MAX_QUERY_NODES = 100  # terms, phrases and operators as written (a preset counts as one)
MAX_CHANNELS = 20
PAGE = 50


@dataclass(frozen=True)
class View:
    """A subscription as the API shows it."""

    row: TenantSubscription
    channels: list[str]

    def to_json(self) -> dict:
        r = self.row
        return {"id": r.id, "name": r.name, "query": r.query, "fx": r.fx, "channels": self.channels,
                "paused": r.paused, "created_at": r.created_at.isoformat(),
                "updated_at": r.updated_at.isoformat()}


# --- checks (pure) ------------------------------------------------------------

def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Invalid(f"a name is 1-{MAX_NAME} characters", field="name")
    return name.strip()


def check_query(query: Any) -> str:
    """The query, or Invalid with the same message (and `column`) as
    `tulpar rules check`; too long or too complex is said so."""
    if not isinstance(query, str) or not query.strip():
        raise Invalid("a query is required", field="query")
    if len(query) > MAX_QUERY_CHARS:
        raise Invalid(f"the query is {len(query)} characters; at most {MAX_QUERY_CHARS} are allowed",
                      field="query")
    try:
        tree = rules.parse(query)
    except rules.RuleError as exc:
        raise Invalid(str(exc), field="query", column=exc.column) from None
    size = count_nodes(tree)
    if size > MAX_QUERY_NODES:
        raise Invalid(f"the query is too complex: {size} terms and operators, at most {MAX_QUERY_NODES}; "
                      "split it into several subscriptions or use a preset (topic:, country:)", field="query")
    return query


def count_nodes(node) -> int:
    if isinstance(node, nodes.PresetRef):
        return 1  # ours, however large
    if isinstance(node, (nodes.And, nodes.Or)):
        return 1 + sum(count_nodes(c) for c in node.children)
    if isinstance(node, nodes.Not):
        return 1 + count_nodes(node.child)
    if isinstance(node, nodes.Near):
        return 1 + count_nodes(node.left) + count_nodes(node.right)
    return 1


def check_fx(name: str, fx: Any) -> dict:
    from services.fx import rules as fx_rules

    if not isinstance(fx, dict):
        raise Invalid("an FX rule is an object like {\"pair\": \"KZT/USD\", \"change_pct\": 1.0}", field="fx")
    if "name" in fx:
        raise Invalid("the rule's name is the subscription's: give it as name", field="fx.name")
    try:
        fx_rules.parse_rule({"name": name, **fx})
    except fx_rules.FxRuleError as exc:
        raise Invalid(str(exc), field=f"fx.{exc.key}" if exc.key else "fx") from None
    except ValueError as exc:
        raise Invalid(str(exc), field="fx") from None
    return fx


def _check_channel_list(channel_ids: Any) -> list[str]:
    if not isinstance(channel_ids, list) or not channel_ids:
        raise Invalid("at least one channel id", field="channels")
    if len(channel_ids) > MAX_CHANNELS:
        raise Invalid(f"at most {MAX_CHANNELS} channels", field="channels")
    for i, c in enumerate(channel_ids):
        if not isinstance(c, str):
            raise Invalid("a channel id is a string", field=f"channels[{i}]")
    return list(dict.fromkeys(channel_ids))


# --- reads and writes ----------------------------------------------------------

def create(store: Store, tenant_id: str, name: str, channel_ids: list[str], now: datetime, *,
           query: str | None = None, fx: dict | None = None, paused: bool = False) -> View:
    name = check_name(name)
    if (query is None) == (fx is None):
        raise Invalid("give exactly one of query and fx", field="query")
    if query is not None:
        query = check_query(query)
    else:
        fx = check_fx(name, fx)
    wanted = _check_channel_list(channel_ids)
    row = TenantSubscription(id=ids.new_id("sub"), tenant_id=tenant_id, name=name, query=query, fx=fx,
                             paused=bool(paused), created_at=now, updated_at=now)
    try:
        with store.sessions.begin() as s:
            _require_channels(s, tenant_id, wanted)
            s.add(row)
            s.flush()
            _set_channels(s, row.id, wanted)
            log_changes(s, [row.id], now)
    except sa.exc.IntegrityError:
        raise Conflict(f"a subscription named {name!r} exists already", field="name") from None
    return View(row, wanted)


def get(store: Store, tenant_id: str, subscription_id: str) -> View:
    with store.sessions() as s:
        row = _own(s, tenant_id, subscription_id)
        return View(row, _channels_of(s, row.id))


def page(store: Store, tenant_id: str, after: str | None = None, limit: int = PAGE) -> tuple[list[View], str | None]:
    """One page in id order, and the cursor of the next (None at the end).
    The cursor is opaque to clients (the last id, base64)."""
    last = decode_cursor(after) if after else None
    with store.sessions() as s:
        q = select(TenantSubscription).where(TenantSubscription.tenant_id == tenant_id)
        if last is not None:
            q = q.where(TenantSubscription.id > last)
        rows = list(s.scalars(q.order_by(TenantSubscription.id).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        links: dict[str, list[str]] = {r.id: [] for r in rows}
        for sid, cid in s.execute(select(SubscriptionChannel.subscription_id, SubscriptionChannel.channel_id)
                                  .where(SubscriptionChannel.subscription_id.in_(list(links)))
                                  .order_by(SubscriptionChannel.subscription_id, SubscriptionChannel.position)):
            links[sid].append(cid)
        views = [View(r, links[r.id]) for r in rows]
    return views, encode_cursor(rows[-1].id) if more else None


def update(store: Store, tenant_id: str, subscription_id: str, now: datetime, *,
           query: str | None = None, channel_ids: list[str] | None = None, paused: bool | None = None,
           name: str | None = None, fx: dict | None = None) -> View:
    """Change what is given (None: keep). A news subscription's query may
    change, an FX one's rule; not one into the other."""
    try:
        return _update(store, tenant_id, subscription_id, now, query, channel_ids, paused, name, fx)
    except sa.exc.IntegrityError:
        # Raised by the flush or the commit, after the transaction was rolled back.
        raise Conflict(f"a subscription named {name!r} exists already", field="name") from None


def _update(store, tenant_id, subscription_id, now, query, channel_ids, paused, name, fx) -> View:
    with store.sessions.begin() as s:
        row = _own(s, tenant_id, subscription_id)
        if name is not None:
            row.name = check_name(name)
        if query is not None:
            if row.query is None:
                raise Invalid("an FX subscription has no query; change its fx rule", field="query")
            row.query = check_query(query)
        if fx is not None:
            if row.fx is None:
                raise Invalid("a news subscription has no fx rule; change its query", field="fx")
            row.fx = check_fx(row.name, fx)
        if paused is not None:
            if not isinstance(paused, bool):
                raise Invalid("true or false", field="paused")
            row.paused = paused
        if channel_ids is not None:
            wanted = _check_channel_list(channel_ids)
            _require_channels(s, tenant_id, wanted)
            _set_channels(s, row.id, wanted)
        row.updated_at = now
        log_changes(s, [row.id], now)
        s.flush()
        return View(row, _channels_of(s, row.id))


def delete_(store: Store, tenant_id: str, subscription_id: str, now: datetime) -> None:
    with store.sessions.begin() as s:
        row = _own(s, tenant_id, subscription_id)
        s.execute(delete(SubscriptionChannel).where(SubscriptionChannel.subscription_id == row.id))
        s.delete(row)
        log_changes(s, [row.id], now)


def log_changes(s: Session, subscription_ids: list[str], now: datetime) -> None:
    """Append to the change log inside the caller's transaction."""
    for sid in dict.fromkeys(subscription_ids):
        s.add(SubscriptionChange(subscription_id=sid, at=now))


# --- helpers --------------------------------------------------------------------

def _own(s: Session, tenant_id: str, subscription_id: str) -> TenantSubscription:
    row = s.scalar(select(TenantSubscription).where(TenantSubscription.id == subscription_id,
                                                    TenantSubscription.tenant_id == tenant_id))
    if row is None:
        raise NotFound(f"no subscription {subscription_id!r}")
    return row


def _require_channels(s: Session, tenant_id: str, wanted: list[str]) -> None:
    have = set(s.scalars(select(Channel.id).where(Channel.tenant_id == tenant_id, Channel.id.in_(wanted))))
    for i, c in enumerate(wanted):
        if c not in have:
            # Someone else's channel reads exactly like a missing one.
            raise Invalid(f"no channel {c!r}", field=f"channels[{i}]")


def _set_channels(s: Session, subscription_id: str, wanted: list[str]) -> None:
    s.execute(delete(SubscriptionChannel).where(SubscriptionChannel.subscription_id == subscription_id))
    for i, c in enumerate(wanted):
        s.add(SubscriptionChannel(subscription_id=subscription_id, channel_id=c, position=i))


def _channels_of(s: Session, subscription_id: str) -> list[str]:
    return list(s.scalars(select(SubscriptionChannel.channel_id)
                          .where(SubscriptionChannel.subscription_id == subscription_id)
                          .order_by(SubscriptionChannel.position)))


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_CURSOR_VALUE = re.compile(r"^[A-Za-z0-9_]{1,60}$")


def decode_cursor(cursor: str) -> str:
    try:
        if not _CURSOR.match(cursor):
            raise ValueError(cursor)
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not _CURSOR_VALUE.match(value):
            raise ValueError(cursor)
        return value
    except (ValueError, UnicodeDecodeError):
        raise Invalid("not a cursor this API gave out", field="cursor") from None
