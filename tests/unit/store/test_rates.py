"""services/store/rates.py on a real database (SQLite; PostgreSQL too when
DATABASE_URL is set)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.fx.quote import Quote
from services.fx.rules import RuleState
from services.store import Store, rates
from services.store.db import NewDelivery, add_deliveries, mark_source_ok
from services.store.rates import RuleStateUpdate, SavedRuleState, StaleRuleState

T0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=6)


def q(pair: str, rate: str, days: int = 0) -> Quote:
    return Quote(pair, Decimal(rate), T0 + timedelta(days=days))


# (case, batches of (source, quotes), stored count afterwards)
INSERTS = [
    ("one quote", [("nbk", [q("USD/KZT", "518.2")])], 1),
    ("repeat in a later batch", [("nbk", [q("USD/KZT", "518.2")]), ("nbk", [q("USD/KZT", "518.2")])], 1),
    ("repeat inside one batch", [("nbk", [q("USD/KZT", "518.2"), q("USD/KZT", "518.2")])], 1),
    ("a later correction of the same day: the first stands",
     [("nbk", [q("USD/KZT", "518.2")]), ("nbk", [q("USD/KZT", "519")])], 1),
    ("same pair and day from two sources: both kept",
     [("nbk", [q("USD/KZT", "518.2")]), ("nbk-rss", [q("USD/KZT", "518.2")])], 2),
    ("next day is a new observation", [("nbk", [q("USD/KZT", "518.2")]), ("nbk", [q("USD/KZT", "518.2", 1)])], 2),
    ("other pair same day", [("nbk", [q("USD/KZT", "518.2"), q("EUR/KZT", "601.44")])], 2),
]


@pytest.mark.parametrize("case, batches, count", INSERTS, ids=[c[0] for c in INSERTS])
def test_a_repeated_observation_is_stored_once(store, case, batches, count):
    for source, quotes in batches:
        rates.insert_observations(store, source, quotes, NOW)
    assert rates.observation_count(store) == count
    assert rates.unseen(store, batches[0][0], batches[0][1]) == []


@pytest.mark.parametrize("rate", ["518.2", "0.0393", "1000", "0.001929756850636819760710150521"])
def test_rates_come_back_exactly(store, rate):
    rates.insert_observations(store, "nbk", [q("UZS/KZT", rate)], NOW)
    [back] = rates.history(store, T0)
    assert back == Quote("UZS/KZT", Decimal(rate), T0, "nbk")
    assert str(back.rate) == rate


def test_history_since_and_by_pair_in_time_order(store):
    rates.insert_observations(store, "nbk", [q("USD/KZT", "520", 2), q("USD/KZT", "518", 0),
                                             q("EUR/KZT", "600", 1)], NOW)
    rates.insert_observations(store, "cbr", [q("KZT/RUB", "0.156", 1)], NOW)
    assert [(x.pair, x.at.day) for x in rates.history(store, T0 + timedelta(days=1))] == [
        ("EUR/KZT", 21), ("KZT/RUB", 21), ("USD/KZT", 22)]
    assert [x.source for x in rates.history(store, T0, pairs=["KZT/RUB"])] == ["cbr"]
    assert [x.rate for x in rates.history(store, T0, pairs=["USD/KZT"])] == [Decimal(518), Decimal(520)]


def update(expected, armed, fired_day, until_day) -> RuleStateUpdate:
    fired = T0 + timedelta(days=fired_day) if fired_day is not None else None
    return RuleStateUpdate(expected, SavedRuleState(RuleState(armed, fired), T0 + timedelta(days=until_day)))


def test_rule_states_round_trip_and_compare_and_set(store):
    assert rates.rule_states(store, ["a", "b"]) == {}
    rates.save_rule_states(store, {"a": update(None, False, 1, 1)})
    saved = rates.rule_states(store, ["a", "b"])
    assert saved == {"a": SavedRuleState(RuleState(False, T0 + timedelta(days=1)), T0 + timedelta(days=1))}
    # Someone else's view (no row) is stale now: refused, nothing written.
    with pytest.raises(StaleRuleState):
        rates.save_rule_states(store, {"b": update(None, True, None, 2), "a": update(None, True, None, 2)})
    assert rates.rule_states(store, ["a", "b"]) == saved
    rates.save_rule_states(store, {"a": update(T0 + timedelta(days=1), True, 1, 2)})
    assert rates.rule_states(store, ["a"])["a"].evaluated_until == T0 + timedelta(days=2)


def delivery(key: str) -> NewDelivery:
    return NewDelivery(key, "nbk", "KZT/USD@2026-11-21", "watch", "mailto:fx@example.com",
                       {"subject": "s", "text": "t", "html": "h"})


def test_commit_writes_observations_states_deliveries_and_source_together(store):
    ids = rates.commit_rates(store, source="nbk", url="http://nbk/r.xml", etag='"e1"', last_modified=None,
                             observations=[q("USD/KZT", "510", 1)],
                             states={"watch": update(None, False, 1, 1)},
                             deliveries=[delivery("k1"), delivery("k2"), delivery("k1")], now=NOW)
    assert len(ids) == 2 and sorted(d.idempotency_key for d in store.deliveries("pending")) == ["k1", "k2"]
    assert rates.observation_count(store) == 1
    assert rates.rule_states(store, ["watch"])["watch"].state.armed is False
    assert store.source_state("nbk").etag == '"e1"'
    # A re-run of the same commit (a crash after it, then a re-poll) adds nothing.
    again = rates.commit_rates(store, source="nbk", url="http://nbk/r.xml", etag='"e1"', last_modified=None,
                               observations=[q("USD/KZT", "510", 1)],
                               states={"watch": update(T0 + timedelta(days=1), False, 1, 1)},
                               deliveries=[delivery("k1"), delivery("k2")], now=NOW)
    assert again == [] and len(store.deliveries()) == 2 and rates.observation_count(store) == 1


def test_commit_with_a_stale_state_writes_nothing(store):
    rates.save_rule_states(store, {"watch": update(None, True, None, 0)})
    with pytest.raises(StaleRuleState):
        rates.commit_rates(store, source="nbk", url="http://nbk/r.xml", etag='"e2"', last_modified=None,
                           observations=[q("USD/KZT", "510", 1)],
                           states={"watch": update(None, False, 1, 1)},  # read before the save above
                           deliveries=[delivery("k1")], now=NOW)
    assert rates.observation_count(store) == 0
    assert store.deliveries() == []
    assert store.source_state("nbk") is None
    assert rates.rule_states(store, ["watch"])["watch"].evaluated_until == T0


def test_commit_racing_a_news_poll_of_the_same_source_row_and_keys(db_url):
    """A commit that meets another transaction writing the same source row and
    delivery key waits for it and keeps its rows (ON CONFLICT), instead of
    failing with an IntegrityError once that transaction commits."""
    other, ours = Store(db_url), Store(db_url)
    other.create_schema()
    outcome: dict = {}

    def our_commit():
        try:
            outcome["ids"] = rates.commit_rates(
                ours, source="nbk", url="http://nbk/r.xml", etag='"e1"', last_modified=None,
                observations=[q("USD/KZT", "510", 1)], states={},
                deliveries=[delivery("k1"), delivery("k2")], now=NOW)
        except Exception as exc:
            outcome["error"] = exc

    with other.sessions.begin() as s:
        [theirs] = add_deliveries(s, [delivery("k1")], NOW)
        mark_source_ok(s, "nbk", "http://nbk/r.xml", '"e0"', None, NOW)
        s.flush()
        racer = threading.Thread(target=our_commit)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()
    racer.join(30)
    assert "error" not in outcome, outcome.get("error")
    [k2] = outcome["ids"]
    assert [(d.id, d.idempotency_key) for d in ours.deliveries()] == [(theirs.id, "k1"), (k2, "k2")]
    assert ours.source_state("nbk").etag == '"e1"' and rates.observation_count(ours) == 1
    other.dispose()
    ours.dispose()
