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

if TYPE_CHECKING:
    from services.config import Source, Subscription
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

@dataclass(frozen=True)
class Subscriptions:
    """The config's subscriptions, compiled once per config: the news queries
    in one index, the FX rules parsed."""

    news: Classifier | None
    fx: tuple[FxSubscription, ...] = ()

    @classmethod
    def of(cls, subscriptions: Sequence[Subscription]) -> Subscriptions:
        # Imported here, not at the top: both modules import this one.
        from services.fx.pipeline import fx_subscriptions
        from services.news.classify import Classifier

        return cls(Classifier(subscriptions), tuple(fx_subscriptions(subscriptions)))


@dataclass(frozen=True)
class Notice:
    """One thing to tell one subscription (a matched article, an FX move),
    before it is routed to the subscription's channels and rendered."""

    subject: Any  # what the pipeline's `email` and `webhook` render
    subscription: str
    channels: tuple[str, ...]
    item_source: str  # the outbox row's item: where it came from, and its id there
    item_id: str
    key: tuple[str, ...]  # what makes it this notice; with the channel, the idempotency key


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
    depends on the notice and on the kind of channel, not on its address, so
    each kind is rendered once per notice."""
    from services.store.db import NewDelivery  # SQLAlchemy: not for config validation

    out = []
    for notice in notices:
        payloads: dict[str, dict] = {}
        for channel in notice.channels:
            kind = channels.kind(channel)
            if kind not in payloads:
                render = pipeline.email if kind == "email" else pipeline.webhook
                payloads[kind] = render(notice.subject, now, templates_dir)
            out.append(NewDelivery(idempotency_key(*notice.key, channel), notice.item_source,
                                   notice.item_id, notice.subscription, channel, payloads[kind]))
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
    try:
        queue.deliver(ids)
    except Exception as exc:  # whatever the broker or its client raise
        return redact_text(str(exc) or type(exc).__name__)
    store.mark_enqueued(ids, clock())
    return None
