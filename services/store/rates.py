"""Rate observations and FX rule states: the store side of currency alerts.

Plain functions over a `Store` (its engine and sessions), kept out of db.py so
the news store and the currency store grow apart. As in db.py, callers pass
`now`; nothing here reads the clock.

`commit_rates` is the rate poll's one transaction: new observations, rule
states and the rendered deliveries (the outbox) land together or not at all,
so a crash between "alert decided" and "alert stored" never loses an alert,
and a re-poll after a crash finds the observations stored and alerts nothing
twice.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from services.fx.quote import Quote
from services.fx.rules import RuleState
from services.store.db import NewDelivery, Store, add_deliveries, mark_source_ok
from services.store.models import FxRuleState, RateObservation


class StaleRuleState(RuntimeError):
    """Another poll saved a rule's state since we read it: nothing was written.
    Trying again (the next poll) re-evaluates from the state that won."""


@dataclass(frozen=True, slots=True)
class SavedRuleState:
    """One subscription's edge-trigger memory and how far it has judged the series."""

    state: RuleState = RuleState()
    evaluated_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class RuleStateUpdate:
    """Write `new` for a subscription, provided its stored `evaluated_until` is
    still `expected_until` (None: no row yet) -- a compare-and-set."""

    expected_until: datetime | None
    new: SavedRuleState


def _key(source: str, q: Quote) -> tuple[str, str, datetime]:
    return (source, q.pair, q.at)


def _existing(s: Session, source: str, quotes: Sequence[Quote]) -> set[tuple[str, str, datetime]]:
    if not quotes:
        return set()
    times = sorted({q.at for q in quotes})
    rows = s.execute(select(RateObservation.source, RateObservation.pair, RateObservation.observed_at)
                     .where(RateObservation.source == source,
                            RateObservation.observed_at >= times[0],
                            RateObservation.observed_at <= times[-1]))
    return {(r[0], r[1], r[2]) for r in rows}


def unseen(store: Store, source: str, quotes: Iterable[Quote]) -> list[Quote]:
    """The quotes of `source` not stored yet, in the order given; a (pair, time)
    repeated within `quotes` counts once (the first one)."""
    quotes = list(quotes)
    with store.sessions() as s:
        taken = _existing(s, source, quotes)
    out = []
    for q in quotes:
        if _key(source, q) not in taken:
            taken.add(_key(source, q))
            out.append(q)
    return out


def _add_observations(s: Session, source: str, quotes: Sequence[Quote], fetched_at: datetime) -> list[Quote]:
    taken = _existing(s, source, quotes)
    added = []
    for q in quotes:
        if _key(source, q) in taken:
            continue  # a repeat (or a later correction of the same day): the first one stands
        taken.add(_key(source, q))
        s.add(RateObservation(source=source, pair=q.pair, rate=format(q.rate, "f"),
                              observed_at=q.at, fetched_at=fetched_at))
        added.append(q)
    return added


def insert_observations(store: Store, source: str, quotes: Iterable[Quote], fetched_at: datetime) -> list[Quote]:
    """Store the quotes of `source` that are not stored yet; returns those stored."""
    with store.sessions.begin() as s:
        return _add_observations(s, source, list(quotes), fetched_at)


def history(store: Store, since: datetime, pairs: Iterable[str] | None = None) -> list[Quote]:
    """Every stored observation at or after `since` (optionally only `pairs`),
    time-ordered, as Quotes whose `source` is the configured source name."""
    q = select(RateObservation).where(RateObservation.observed_at >= since)
    if pairs is not None:
        q = q.where(RateObservation.pair.in_(sorted(set(pairs))))
    with store.sessions() as s:
        rows = s.scalars(q.order_by(RateObservation.observed_at, RateObservation.id))
        return [Quote(r.pair, Decimal(r.rate), r.observed_at, r.source) for r in rows]


def observation_count(store: Store, source: str | None = None) -> int:
    q = select(RateObservation.id)
    if source is not None:
        q = q.where(RateObservation.source == source)
    with store.sessions() as s:
        return len(list(s.scalars(q)))


def rule_states(store: Store, names: Iterable[str]) -> dict[str, SavedRuleState]:
    """Saved states by subscription name; a name with no row is absent."""
    names = sorted(set(names))
    if not names:
        return {}
    with store.sessions() as s:
        rows = s.scalars(select(FxRuleState).where(FxRuleState.subscription.in_(names)))
        return {r.subscription: SavedRuleState(RuleState(bool(r.armed), r.last_fired_at), r.evaluated_until)
                for r in rows}


def save_rule_states(store: Store, updates: Mapping[str, RuleStateUpdate]) -> None:
    """Compare-and-set the states alone (see RuleStateUpdate)."""
    with store.sessions.begin() as s:
        _save_states(s, updates)


def _save_states(s: Session, updates: Mapping[str, RuleStateUpdate]) -> None:
    # The compare is in the UPDATE's WHERE (or the primary key, for a first
    # row), not in Python: on PostgreSQL a racing transaction blocks on the
    # row, then finds it changed and updates nothing, instead of overwriting.
    for name, change in sorted(updates.items()):
        values = {"armed": change.new.state.armed, "last_fired_at": change.new.state.last_fired_at,
                  "evaluated_until": change.new.evaluated_until}
        if change.expected_until is None:
            if s.get(FxRuleState, name) is not None:
                raise StaleRuleState(f"fx rule state of {name!r} was created by another poll")
            s.add(FxRuleState(subscription=name, **values))
            s.flush()  # a racing insert of the same name fails here, inside the transaction
            continue
        done = s.execute(sa_update(FxRuleState)
                         .where(FxRuleState.subscription == name,
                                FxRuleState.evaluated_until == change.expected_until)
                         .values(**values))
        if done.rowcount != 1:
            raise StaleRuleState(f"fx rule state of {name!r} changed under us "
                                 f"(expected evaluated until {change.expected_until})")


def commit_rates(store: Store, *, source: str, url: str, etag: str | None, last_modified: str | None,
                 observations: Sequence[Quote], states: Mapping[str, RuleStateUpdate],
                 deliveries: Sequence[NewDelivery], now: datetime) -> list[int]:
    """One transaction: observations, rule states (compare-and-set), deliveries
    and the source's fetch state. Returns the ids of the deliveries created.
    Raises StaleRuleState (and writes nothing) when another poll got there first."""
    with store.sessions.begin() as s:
        _save_states(s, states)
        _add_observations(s, source, observations, now)
        rows = add_deliveries(s, deliveries, now)
        mark_source_ok(s, source, url, etag, last_modified, now)
        s.flush()
        return [r.id for r in rows]
