"""Ticker lines: latest rate and day change per watched pair."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.fx.quote import Quote
from services.fx.ticker import format_pct, lines


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NOW = at("2024-05-03T12:00")
HISTORY = [
    Quote("USD/KZT", Decimal("518.2"), at("2024-05-01")),
    Quote("USD/KZT", Decimal("518.82"), at("2024-05-02")),
    Quote("USD/KZT", Decimal("520"), at("2024-05-04")),  # tomorrow's rate, published early
    Quote("USD/RUB", Decimal("90.5"), at("2024-05-02")),
    Quote("EUR/USD", Decimal("1.0810"), at("2024-05-02T09:00")),
    Quote("EUR/USD", Decimal("1.0830"), at("2024-05-02T15:00")),
    Quote("EUR/USD", Decimal("1.0800"), at("2024-05-03T10:00")),
]

CASES = [
    ("direct pair", ["USD/KZT"], ["USD/KZT = 518.82 +0.12%"]),
    ("inverse pair", ["KZT/USD"], ["KZT/USD = 0.0019275 -0.12%"]),
    ("cross pair, no point a day back", ["KZT/RUB"], ["KZT/RUB = 0.17443 n/a"]),
    ("only one observation", ["USD/RUB"], ["USD/RUB = 90.5 n/a"]),
    # a day before 05-03 10:00 is 05-02 10:00: the 09:00 point, not the 15:00 one
    ("day change uses the latest point at or before a day back", ["EUR/USD"], ["EUR/USD = 1.08 -0.09%"]),
    ("unknown pair", ["TMT/USD"], ["TMT/USD = n/a"]),
    ("order as asked", ["USD/RUB", "USD/KZT"], ["USD/RUB = 90.5 n/a", "USD/KZT = 518.82 +0.12%"]),
]


@pytest.mark.parametrize("pairs, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_lines(pairs, expected):
    assert lines(HISTORY, pairs, NOW) == expected


def test_later_now_sees_the_later_rate():
    assert lines(HISTORY, ["USD/KZT"], at("2024-05-04")) == ["USD/KZT = 520 +0.23%"]


@pytest.mark.parametrize("pct, text", [
    (None, "n/a"), ("-0.1196", "-0.12%"), ("0.125", "+0.13%"), ("0", "0.00%"),
    ("-0.004", "0.00%"), ("12.5", "+12.50%"),
])
def test_format_pct(pct, text):
    assert format_pct(Decimal(pct) if pct is not None else None) == text
