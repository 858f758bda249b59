"""Pair series from a bag of quotes: direct, inverse, cross with latest-at-or-before legs."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.fx.history import by_pair, latest_at_or_before, series
from services.fx.pairs import report
from services.fx.quote import Quote


def day(n: int) -> datetime:
    return datetime(2024, 4, n, tzinfo=UTC)


def bag(*rows: tuple[int, str, str]) -> list[Quote]:
    return [Quote(pair, Decimal(rate), day(d), "src-" + pair[:3]) for d, pair, rate in rows]


CASES = [
    ("direct, sorted by time", "USD/KZT",
     bag((3, "USD/KZT", "510"), (1, "USD/KZT", "500"), (2, "USD/KZT", "505")),
     [(1, "500"), (2, "505"), (3, "510")]),
    ("inverse", "KZT/USD", bag((1, "USD/KZT", "500"), (2, "USD/KZT", "400")), [(1, "0.002"), (2, "0.0025")]),
    ("direct only, even if the inverse has more points", "USD/KZT",
     bag((1, "USD/KZT", "500"), (2, "KZT/USD", "0.0025")), [(1, "500")]),
    ("cross on common days", "KZT/RUB",
     bag((1, "USD/KZT", "500"), (1, "USD/RUB", "90"), (2, "USD/KZT", "450"), (2, "USD/RUB", "90")),
     [(1, "0.18"), (2, "0.2")]),
    ("cross: a day with one leg uses the other leg's latest", "KZT/RUB",
     bag((1, "USD/KZT", "500"), (1, "USD/RUB", "90"), (2, "USD/RUB", "100"), (3, "USD/KZT", "400")),
     [(1, "0.18"), (2, "0.2"), (3, "0.25")]),
    ("cross: nothing until both legs exist", "KZT/RUB",
     bag((1, "USD/KZT", "500"), (2, "USD/KZT", "400"), (3, "USD/RUB", "100")),
     [(3, "0.25")]),
    ("cross through a non-USD pivot", "KGS/KZT",
     bag((1, "KGS/RUB", "1.05"), (1, "KZT/RUB", "0.2")), [(1, "5.25")]),
    ("not derivable", "KZT/EUR", bag((1, "USD/KZT", "500")), []),
]


@pytest.mark.parametrize("pair, quotes, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_series(pair, quotes, expected):
    got = series(pair, quotes)
    assert all(q.pair == pair for q in got)
    assert [(q.at, report(q.rate)) for q in got] == [(day(d), Decimal(r)) for d, r in expected]


def test_cross_points_name_both_sources():
    got = series("KZT/RUB", bag((1, "USD/KZT", "500"), (1, "RUB/USD", "0.011")))
    assert [q.source for q in got] == ["src-USD+src-RUB"]


def test_same_time_twice_is_one_point_last_given_wins():
    groups = by_pair(bag((1, "USD/KZT", "500"), (1, "USD/KZT", "501"), (2, "USD/KZT", "502")))
    assert [q.rate for q in groups["USD/KZT"]] == [Decimal(501), Decimal(502)]


@pytest.mark.parametrize("when, hi, expected", [
    (day(1), None, None),
    (day(2), None, "500"),
    (day(3), None, "500"),
    (day(4), None, "510"),
    (day(30), None, "510"),
    (day(30), 1, "500"),
    (day(30), 0, None),
])
def test_latest_at_or_before(when, hi, expected):
    points = bag((2, "USD/KZT", "500"), (4, "USD/KZT", "510"))
    found = latest_at_or_before(points, when, hi)
    assert (found.rate if found else None) == (Decimal(expected) if expected else None)
