"""One poll of one source, whatever its kind: the skeleton both pipelines
share, the registry that picks a source kind's pipeline, and the enqueue.

    saved validators -> read -> fresh -> notices -> route + render -> commit -> enqueue
                        ~~~~    ~~~~~    ~~~~~~~                      ~~~~~~
                        (underlined: the pipeline's own steps)

The news pipeline (services/news/pipeline.py) reads a feed, keeps the unseen
articles and classifies them; the currency pipeline (services/fx/pipeline.py)
reads a rate file, keeps the new observations and evaluates the FX rules.
Everything else is here, once: the saved ETag/Last-Modified, recording a
failed source, one delivery per channel rendered as email or webhook, the
idempotency key, a commit lost to a racing poller, and the enqueue.

Filter first, remember last: the pipeline's commit writes the deliveries and
what was seen in one transaction (the delivery table is an outbox), so an
item is never remembered without its deliveries; the ids go on the queue
after it. A crash or a broker failure in between is healed by the sweeper
(services/delivery/outbox.py).
"""
from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.delivery import channels
from services.errors import TulparError
from services.fx.sources import ADAPTERS
from services.net.fetch import FetchState, SourceError
from services.redact import redact_text
from services.threads import synchronized

if TYPE_CHECKING:
    from services.config import Route, Source, Subscription
    from services.delivery.queue import Queue
    from services.fx.pipeline import FxSubscription
    from services.news.classify import Classifier
    from services.settings import Settings
    from services.store import Store
    from services.store.db import NewDelivery

# --- the registry -------------------------------------------------------------

NEWS = "services.news.pipeline"
FX = "services.fx.pipeline"
# Source kind -> the module whose PIPELINE polls it. Module names, imported on
# first use: config validation reads the kinds (services/config.py), and the
# pipelines import this module. Every rate adapter is a kind of the FX pipeline.
KINDS: dict[str, str] = {
    "feed": NEWS,
    **dict.fromkeys(ADAPTERS, FX),
}


class UnknownSourceKind(TulparError, ValueError):
    """A source kind no pipeline polls (config validation refuses these first)."""


def pipeline_for(kind: str) -> Pipeline:
    try:
        module = KINDS[kind]
    except KeyError:
        raise UnknownSourceKind(f"unknown source kind {kind!r}; known: {', '.join(sorted(KINDS))}") from None
    return importlib.import_module(module).PIPELINE


# --- what flows through a poll --------------------------------------------------

class Subscriptions:
    """The subscriptions a poll matches: the news queries in one index (a
    Classifier), the FX rules parsed. Built once from the config's
    (`of`), then changed one subscription at a time: a tenant's is put or
    dropped by its id (services/accounts/live.py), and the config's are
    replaced as a whole when the file changes (`set_config`), so a change
    never re-parses the others.

    Shared by the threads of a poll worker: every change holds `lock` (and
    the Classifier its own, which a classification holds too), so a poll
    never sees a change half made; `lock` is taken before the Classifier's,
    never after."""

    def __init__(self, news: Classifier | None = None, fx: Sequence[FxSubscription] = ()):
        self.lock = threading.RLock()
        self.news = news
        # FX rules by their key, each with its place in the output order.
        self._fx: dict[tuple, tuple[tuple, FxSubscription]] = {}
        self._fx_tuple: tuple[FxSubscription, ...] | None = None
        for i, sub in enumerate(fx):
            self._fx[_key(sub.id, sub.name)] = ((0, i), sub)

    @classmethod
    def of(cls, subscriptions: Sequence[Subscription]) -> Subscriptions:
        # Imported here, not at the top: both modules import this one.
        from services.fx.pipeline import fx_subscriptions
        from services.news.classify import Classifier

        return cls(Classifier(subscriptions), tuple(fx_subscriptions(subscriptions)))

    @property
    @synchronized
    def fx(self) -> tuple[FxSubscription, ...]:
        """The FX rules: the config's in file order, then the tenants' by id."""
        if self._fx_tuple is None:
            self._fx_tuple = tuple(sub for _, sub in sorted(self._fx.values(), key=lambda p: p[0]))
        return self._fx_tuple

    @synchronized
    def set_config(self, subscriptions: Sequence[Subscription]) -> None:
        """Replace the config file's subscriptions (the tenants' stay as they are)."""
        from services.fx.pipeline import fx_subscriptions

        self._ensure_news()
        self.news.set_config(subscriptions)
        for key in [k for k in self._fx if k[0] == CONFIG]:
            del self._fx[key]
        for i, sub in enumerate(s for s in subscriptions if s.fx is not None):
            [parsed] = fx_subscriptions([sub])
            self._fx[_key(None, sub.name)] = ((0, i), parsed)
        self._fx_tuple = None

    @synchronized
    def put(self, subscription: Subscription) -> None:
        """Add or replace a tenant's subscription (by its id); raises
        RuleError or ValueError when its rule does not parse (then nothing
        of it is left in here)."""
        from services.fx.pipeline import fx_subscription

        key = _key(subscription.id, subscription.name)
        self.drop(subscription.id)
        if subscription.query is not None:
            self._ensure_news()
            self.news.put(subscription)
        elif subscription.fx is not None:
            self._fx[key] = ((1, subscription.id), fx_subscription(subscription))
            self._fx_tuple = None

    @synchronized
    def put_many(self, subscriptions: Sequence[Subscription]) -> list[tuple[Subscription, Exception]]:
        """`put` for many tenants' subscriptions at once (a worker's start);
        returns those whose rule did not parse, with the error, and goes on."""
        from services.fx.pipeline import fx_subscription

        news, failed = [], []
        for sub in subscriptions:
            self.drop(sub.id)
            if sub.query is not None:
                news.append(sub)
            elif sub.fx is not None:
                try:
                    self._fx[_key(sub.id, sub.name)] = ((1, sub.id), fx_subscription(sub))
                except ValueError as exc:
                    failed.append((sub, exc))
        self._fx_tuple = None
        if news:
            self._ensure_news()
            failed += self.news.put_many(news)
        return failed

    @synchronized
    def drop(self, subscription_id: str) -> None:
        """Remove a tenant's subscription, if it is here."""
        if self.news is not None:
            self.news.remove(subscription_id)
        if self._fx.pop(_key(subscription_id, ""), None) is not None:
            self._fx_tuple = None

    def __contains__(self, subscription_id: str) -> bool:
        return (self.news is not None and subscription_id in self.news) or \
            _key(subscription_id, "") in self._fx

    @synchronized
    def _ensure_news(self) -> None:
        if self.news is None:
            from services.news.classify import Classifier

            self.news = Classifier(())


CONFIG, TENANT = "config", "tenant"


def _key(subscription_id: str | None, name: str) -> tuple[str, str]:
    """A subscription's key in the indexes: a tenant's by id, the config's by
    name (tagged, so neither can shadow the other)."""
    return (TENANT, subscription_id) if subscription_id is not None else (CONFIG, name)


@dataclass(frozen=True)
class Notice:
    """One thing to tell one subscription (a matched article, an FX move),
    before it is routed to the subscription's channels and rendered."""

    subject: Any  # what the pipeline's `email` and `webhook` render
    subscription: str  # its name, as the alert shows it
    channels: tuple[str, ...]
    item_source: str  # the outbox row's item: where it came from, and its id there
    item_id: str
    key: tuple[str, ...]  # what makes it this notice; with the channel, the idempotency key
    # A tenant's subscription: its channels with their ids (then the
    # idempotency key takes the channel's id, not its target).
    routes: tuple[Route, ...] = ()
    tenant_id: str | None = None
    subscription_id: str | None = None

    @classmethod
    def to(cls, sub: Subscription | FxSubscription, subject: Any, item_source: str, item_id: str,
           key: tuple) -> Notice:
        """The notice of `subject` for `sub`; `key` names the subscription
        with the placeholder SUBSCRIPTION. The config file's put their name
        there -- exactly the keys written before tenants existed, so their
        outbox rows still dedupe -- a tenant's its id, under a kind of their
        own ("news@tenant")."""
        if sub.id is None:
            key = tuple(sub.name if part is SUBSCRIPTION else part for part in key)
            return cls(subject, sub.name, tuple(sub.channels), item_source, item_id, key=key)
        key = (f"{key[0]}@tenant", *(sub.id if part is SUBSCRIPTION else part for part in key[1:]))
        return cls(subject, sub.name, tuple(sub.channels), item_source, item_id, key=key,
                   routes=tuple(sub.routes), tenant_id=sub.tenant_id, subscription_id=sub.id)


# Where a notice's key names its subscription (Notice.to).
SUBSCRIPTION = object()


@dataclass(frozen=True)
class Decided:
    notices: list[Notice]
    remember: Any = None  # what the pipeline's commit stores besides (news: countries; fx: rule states)


class LostRace(TulparError):
    """A pipeline's commit found that another poll committed the same items
    first, and wrote nothing; that poll alerted (or will) for them."""


@dataclass(frozen=True)
class Pipeline:
    """The steps one kind of source has of its own; `poll` runs them in order."""

    nouns: tuple[str, str]  # what the summary counts: ("items", "matches")
    # (source, saved validators, settings, now) -> (items, new validators); raises SourceError
    read: Callable[[Source, FetchState | None, Settings, datetime], tuple[list, FetchState]]
    # (items, source, store) -> the items not stored or seen before
    fresh: Callable[[list, Source, Store], list]
    # (fresh items, subscriptions, store, now) -> the notices, and what to remember
    notices: Callable[[list, Subscriptions, Store, datetime], Decided]
    # (notice subject, now, templates dir) -> a payload
    email: Callable[[Any, datetime, Path], dict]
    webhook: Callable[[Any, datetime, Path], dict]
    # (store, source, new validators, fresh items, decided, deliveries, now) -> ids
    # of the deliveries created, in one transaction; raises LostRace
    commit: Callable[[Store, Source, FetchState, list, Decided, list[NewDelivery], datetime], list[int]]


@dataclass
class PollReport:
    source: str
    nouns: tuple[str, str] = ("items", "matches")
    fetched: int = 0
    new: int = 0
    matched: int = 0
    delivery_ids: list[int] = field(default_factory=list)
    error: str | None = None
    transient: bool = False
    queue_error: str | None = None  # why the deliveries stayed in the outbox (redacted)

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: FAILED {self.error}"
        items, matches = self.nouns
        return (f"{self.source}: {self.fetched} {items}, {self.new} new, {self.matched} {matches}, "
                f"{len(self.delivery_ids)} deliveries queued")


# --- the skeleton ----------------------------------------------------------------

def poll_source(source: Source, subscriptions: Subscriptions, store: Store, queue: Queue | None,
                settings: Settings, clock: Callable[[], datetime]) -> PollReport:
    """Poll `source` with its kind's pipeline and put the new deliveries on
    `queue` (None: they wait in the outbox for a worker's sweeper)."""
    report = poll(pipeline_for(source.kind), source, subscriptions, store, settings, clock())
    if queue is not None:
        report.queue_error = enqueue(report.delivery_ids, queue, store, clock)
    return report


def poll(pipeline: Pipeline, source: Source, subscriptions: Subscriptions, store: Store,
         settings: Settings, now: datetime) -> PollReport:
    report = PollReport(source.name, pipeline.nouns)
    try:
        items, validators = pipeline.read(source, saved_validators(store, source), settings, now)
    except SourceError as exc:
        # Recorded with the old validators kept: the next poll reads it all again.
        store.record_source_error(source.name, source.url, str(exc), now)
        report.error, report.transient = str(exc), exc.transient
        return report
    fresh = pipeline.fresh(items, source, store)
    decided = pipeline.notices(fresh, subscriptions, store, now)
    deliveries = rendered(pipeline, decided.notices, now, settings.templates_dir)
    report.fetched, report.new, report.matched = len(items), len(fresh), len(decided.notices)
    try:
        report.delivery_ids = pipeline.commit(store, source, validators, fresh, decided, deliveries, now)
    except LostRace as exc:
        # Nothing of ours was written; the next poll starts clean.
        report.error = f"another poll committed first, nothing written: {exc}"
        report.transient, report.matched = True, 0
    return report


def saved_validators(store: Store, source: Source) -> FetchState | None:
    """The ETag/Last-Modified of the last good poll, for a conditional GET;
    none once the source's URL changed in the config."""
    state = store.source_state(source.name)
    if state is None or state.url != source.url:
        return None
    return FetchState(state.etag, state.last_modified)


def rendered(pipeline: Pipeline, notices: Sequence[Notice], now: datetime,
             templates_dir: Path) -> list[NewDelivery]:
    """Route and render: one delivery per channel of each notice. A payload
    depends on the notice and on the kind of channel (and a tenant's
    webhook's format), not on its address, so each is rendered once per
    notice."""
    from services.store.db import NewDelivery  # SQLAlchemy: not for config validation

    out = []
    for notice in notices:
        payloads: dict[tuple, dict] = {}

        def payload(kind: str, fmt: str | None) -> dict:
            look = (kind, (fmt or "json") if kind == "webhook" else None)
            if look not in payloads:
                if kind == "email":
                    payloads[look] = pipeline.email(notice.subject, now, templates_dir)
                else:
                    # Every format is "json" (services/accounts/channels.py
                    # FORMATS): the pipeline's own webhook body.
                    payloads[look] = pipeline.webhook(notice.subject, now, templates_dir)
            return payloads[look]

        if notice.routes:
            for route in notice.routes:
                out.append(NewDelivery(
                    idempotency_key(*notice.key, route.channel_id), notice.item_source, notice.item_id,
                    notice.subscription, route.target, payload(channels.kind(route.target), route.format),
                    tenant_id=notice.tenant_id, subscription_id=notice.subscription_id,
                    channel_id=route.channel_id))
            continue
        for channel in notice.channels:
            out.append(NewDelivery(idempotency_key(*notice.key, channel), notice.item_source,
                                   notice.item_id, notice.subscription, channel,
                                   payload(channels.kind(channel), None)))
    return out


def idempotency_key(*parts: str) -> str:
    # The same item, subscription and channel always give the same key: a
    # re-poll after a crash, or a second poller racing this one, finds the
    # delivery already written. Receivers see it too (webhook-id, Message-ID).
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def enqueue(ids: list[int], queue: Queue, store: Store, clock: Callable[[], datetime]) -> str | None:
    """Put the deliveries on the queue, then mark them enqueued. When the
    broker cannot take them they stay unmarked in the outbox, where the
    sweeper finds them; returns why (redacted: a broker URL may carry a
    password), else None."""
    if not ids:
        return None
    # All of them in one round trip (services/delivery/queue.py). Each
    # message carries the time it was sent, enqueued_at is taken just after:
    # the sweeper compares the two (within CLOCK_SKEW) to tell a delivery
    # waiting its turn from a lost one.
    try:
        queue.deliver(ids)
    except Exception as exc:  # whatever the broker or its client raise
        return redact_text(str(exc) or type(exc).__name__)
    store.mark_enqueued(ids, clock())
    return None
