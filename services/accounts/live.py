"""The workers' side of the accounts: the subscriptions a worker matches, kept
up to date incrementally.

What a worker matches is the config file's subscriptions (unless
TULPAR_CONFIG_SUBSCRIPTIONS is off) plus the tenants' in the database that
are not paused, each routed only to its channels that exist and are
confirmed (an email channel is unconfirmed until its link is followed, and
nothing is sent to it before); one with no such channel is not matched at
all.

`Live` loads them all once, remembering the newest change (`seq` of the
subscription_change log, which every write in subscriptions.py and
channels.py appends to in its own transaction). `refresh()` -- at the start
of every poll -- reads the log past that point in one query on its primary
key and reloads only the subscriptions it names: each is put into the index
again, or dropped when it is gone, paused or left without a channel. The
others are not touched, let alone parsed again.

A change's `seq` is handed out when it is inserted, not when it commits: on
PostgreSQL a transaction holding seq 10 may commit after one holding 11. A
worker that saw 11 would skip 10 for ever, so a number missing below the
newest one seen is looked for again on each refresh for GAP_WAIT seconds
(after that it was a rolled-back insert). SQLite has one writer at a time
and hands out no such holes.
"""
from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import collector
from services.config import Route, Subscription
from services.polling import Subscriptions
from services.store import Store
from services.store.models import Channel, ChannelType, SubscriptionChange, SubscriptionChannel, TenantSubscription
from services.threads import synchronized

log = logging.getLogger("tulpar.live")

GAP_WAIT = 60.0     # seconds a missing seq is looked for again
MAX_GAPS = 10_000   # beyond this many holes at once, the oldest are given up
CHUNK = 500         # ids per IN (...) when reloading
WEBHOOK_FORMATS = {"json"}  # services/accounts/channels.py FORMATS


class Live:
    """The subscriptions one worker process matches (`subscriptions`, what
    the pipelines take), loaded at construction."""

    def __init__(self, store: Store, config_subscriptions: Sequence[Subscription] = (), *,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.clock = clock
        self.subscriptions = Subscriptions.of(config_subscriptions)
        # One refresh at a time, and none while a change is being made (the
        # threads of a poll worker share this object).
        self.lock = self.subscriptions.lock
        self.applied = 0                  # the newest seq applied
        self.gaps: dict[int, float] = {}  # seq below `applied` not seen yet -> when first missed
        self.load()

    @synchronized
    def set_config(self, config_subscriptions: Sequence[Subscription]) -> None:
        """The config file changed: replace its subscriptions, not the tenants'."""
        self.subscriptions.set_config(config_subscriptions)

    @synchronized
    def load(self) -> int:
        """Every tenant's subscription that can send; returns how many."""
        # Millions of small objects, no cycle among them (services/collector.py).
        with collector.paused():
            with self.store.sessions() as s:
                # The log's head first: a change committed after this read is
                # applied by the next refresh, even if the load below saw it too
                # (applying one twice changes nothing).
                top = s.scalar(select(sa.func.max(SubscriptionChange.seq))) or 0
                subs = sendable(s, None)
            failed = self.subscriptions.put_many(subs)
        for sub, exc in failed:
            log.error("subscription %s (%s) left out: its rule does not parse: %s", sub.id, sub.name, exc)
        self.applied, self.gaps = top, {}
        loaded = len(subs) - len(failed)
        log.info("subscriptions: loaded %d from the database (pid %d), up to change %d",
                 loaded, os.getpid(), top)
        return loaded

    @synchronized
    def refresh(self) -> list[str]:
        """Apply the changes logged since the last look; returns the ids of
        the subscriptions reloaded (none: one cheap query, nothing else)."""
        now = self.clock()
        for seq in [q for q, since in self.gaps.items() if now - since > GAP_WAIT]:
            del self.gaps[seq]
        q = select(SubscriptionChange.seq, SubscriptionChange.subscription_id)
        after = SubscriptionChange.seq > self.applied
        q = q.where(sa.or_(after, SubscriptionChange.seq.in_(list(self.gaps))) if self.gaps else after)
        with self.store.sessions() as s:
            rows = s.execute(q).all()
            if not rows:
                return []
            changed = list(dict.fromkeys(sid for _, sid in rows))
            subs = {sub.id: sub for sub in sendable(s, changed)}
        seen = {seq for seq, _ in rows}
        top = max(seen)
        for seq in seen:
            self.gaps.pop(seq, None)
        if top > self.applied:
            missing = [q for q in range(self.applied + 1, top) if q not in seen][-MAX_GAPS:]
            self.gaps.update(dict.fromkeys(missing, now))
            if len(self.gaps) > MAX_GAPS:
                for seq in sorted(self.gaps)[:len(self.gaps) - MAX_GAPS]:
                    del self.gaps[seq]
            self.applied = top
        for sid in changed:
            sub = subs.get(sid)
            if sub is None:
                self.subscriptions.drop(sid)
                continue
            try:
                self.subscriptions.put(sub)
            except ValueError as exc:  # RuleError is one
                log.error("subscription %s (%s) left out: its rule does not parse: %s", sub.id, sub.name, exc)
        log.info("subscriptions: %d changed (%s), applied up to change %d",
                 len(changed), ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else ""), self.applied)
        return changed


def sendable(s: Session, ids: Iterable[str] | None) -> list[Subscription]:
    """The tenants' subscriptions that can send (not paused, with at least
    one existing, confirmed channel), as the pipelines take them: `ids` only
    (None: all), with their routes in the subscription's channel order.
    Two queries (per CHUNK ids)."""
    if ids is None:
        return _sendable(s, None)
    ids = list(ids)
    out: list[Subscription] = []
    for i in range(0, len(ids), CHUNK):
        out += _sendable(s, ids[i:i + CHUNK])
    return out


def _sendable(s: Session, ids: list[str] | None) -> list[Subscription]:
    subs = select(TenantSubscription.id, TenantSubscription.tenant_id, TenantSubscription.name,
                  TenantSubscription.query, TenantSubscription.fx).where(TenantSubscription.paused.is_(False))
    routes = (select(SubscriptionChannel.subscription_id, Channel.id, Channel.type, Channel.target, Channel.format)
              .join(Channel, Channel.id == SubscriptionChannel.channel_id)
              .where(Channel.confirmed_at.is_not(None))
              .order_by(SubscriptionChannel.subscription_id, SubscriptionChannel.position))
    if ids is not None:
        subs = subs.where(TenantSubscription.id.in_(ids))
        routes = routes.where(SubscriptionChannel.subscription_id.in_(ids))
    # Core rows, not the ORM's (a third cheaper at 100k), and one Route, one
    # routes tuple, one channels tuple and one tenant id string for all the
    # subscriptions that share them: a tenant's hundreds of subscriptions
    # mostly go to the same channel or two.
    #
    # Routes are looked up by channel id (a channel's row gives its one
    # Route), not by a (target, id, format) tuple: such a tuple per channel,
    # freed once the load is done, would leave a hole beside every Route in
    # the allocator's pools, and a worker's pool process forked afterwards
    # would fill those holes -- writing to, and so copying, the pages it
    # shares with its parent (benchmarks/fork_memory.py).
    conn = s.connection()
    route_of: dict[str, Route] = {}
    by_sub: dict[str, list[Route]] = defaultdict(list)
    for sid, cid, type_, target, fmt in conn.execute(routes).all():
        if type_ == ChannelType.WEBHOOK and (fmt or "json") not in WEBHOOK_FORMATS:
            log.error("channel %s left out: unknown webhook format %r", cid, fmt)
            continue
        route = route_of.get(cid)
        if route is None:
            route = route_of[cid] = Route(target, cid, fmt if type_ == ChannelType.WEBHOOK else None)
        by_sub[sid].append(route)
    shared: dict[tuple, tuple[tuple[Route, ...], tuple[str, ...]]] = {}
    tenant_ids: dict[str, str] = {}
    out = []
    for sid, tenant_id, name, query, fx in conn.execute(subs.order_by(TenantSubscription.id)).all():
        got = by_sub.get(sid)
        if got:
            look = tuple(got)
            pair = shared.get(look)
            if pair is None:
                pair = shared[look] = (look, tuple(r.target for r in look))
            out.append(Subscription(name, pair[1], query=query, fx=fx, id=sid,
                                    tenant_id=tenant_ids.setdefault(tenant_id, tenant_id), routes=pair[0]))
    return out
