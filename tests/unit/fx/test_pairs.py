"""Pairs: validation, inversion, cross rates through a pivot, display rounding."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.fx.pairs import PairError, change_pct, check_pair, cross, derive, display, invert, pivots, report
from services.fx.quote import Quote

T1 = datetime(2024, 5, 1, tzinfo=UTC)
T2 = datetime(2024, 5, 2, tzinfo=UTC)


def q(pair: str, rate: str, at: datetime = T1, source: str = "") -> Quote:
    return Quote(pair, Decimal(rate), at, source)


@pytest.mark.parametrize("text", ["KZT/USD", "USD/KZT", "TMT/CNY"])
def test_valid_pairs(text):
    assert check_pair(text) == text


@pytest.mark.parametrize("text, why", [
    ("kzt/usd", "upper-case"),
    ("KZT-USD", "BASE/QUOTE"),
    ("KZT/US", "3 upper-case"),
    ("KZTX/USD", "3 upper-case"),
    ("KZT/USD/RUB", "BASE/QUOTE"),
    ("KZT/KZT", "same currency"),
    ("", "BASE/QUOTE"),
    (" KZT/USD", "BASE/QUOTE"),
    (None, "must be text"),
    (518, "must be text"),
])
def test_invalid_pairs(text, why):
    with pytest.raises(PairError, match=why):
        check_pair(text)


def test_invert_keeps_time_and_source():
    inv = invert(q("USD/KZT", "518.2", T2, "nbk"))
    assert (inv.pair, inv.at, inv.source) == ("KZT/USD", T2, "nbk")
    assert str(report(inv.rate)) == "0.001929756850636819760710150521"  # 28 significant digits


def test_cross_multiplies_and_takes_the_later_time():
    c = cross(q("KZT/USD", "0.002", T1, "nbk"), q("USD/RUB", "90", T2, "cbr"))
    assert (c.pair, c.rate, c.at, c.source) == ("KZT/RUB", Decimal("0.180"), T2, "nbk+cbr")


@pytest.mark.parametrize("a, b", [("KZT/USD", "RUB/USD"), ("KZT/USD", "USD/KZT")])
def test_cross_needs_matching_legs(a, b):
    with pytest.raises(PairError):
        cross(q(a, "1"), q(b, "2"))


@pytest.mark.parametrize("pair, snapshot, expected", [
    # direct wins even when an inverse is also quoted
    ("USD/KZT", {"USD/KZT": "500", "KZT/USD": "0.0019"}, "500"),
    ("KZT/USD", {"USD/KZT": "500"}, "0.002"),
    # cross through USD, legs used either way round
    ("KZT/RUB", {"USD/KZT": "500", "USD/RUB": "90"}, "0.18"),
    ("RUB/KZT", {"USD/KZT": "500", "RUB/USD": "0.01"}, "5"),
    # no USD link: any common currency (here RUB, as CBR quotes everything in roubles)
    ("KGS/KZT", {"KGS/RUB": "1.05", "KZT/RUB": "0.2"}, "5.25"),
    # USD is preferred over an alphabetically earlier pivot
    ("KZT/UZS", {"KZT/EUR": "1", "EUR/UZS": "1", "KZT/USD": "0.002", "USD/UZS": "12500"}, "25.000"),
])
def test_derive(pair, snapshot, expected):
    latest = {p: q(p, r) for p, r in snapshot.items()}
    assert derive(pair, latest).rate == Decimal(expected)


@pytest.mark.parametrize("pair, snapshot", [
    ("KZT/EUR", {}),
    ("KZT/EUR", {"USD/KZT": "500"}),  # only one leg
    ("KZT/EUR", {"USD/KZT": "500", "RUB/EUR": "0.01"}),  # no common currency
])
def test_not_derivable(pair, snapshot):
    assert derive(pair, {p: q(p, r) for p, r in snapshot.items()}) is None


def test_pivots_order_usd_first_then_alphabetical():
    quoted = ["KZT/USD", "UZS/USD", "KZT/RUB", "RUB/UZS", "CNY/KZT", "UZS/CNY"]
    assert pivots("KZT/UZS", quoted) == ["USD", "CNY", "RUB"]


@pytest.mark.parametrize("rate, shown", [
    ("518.2", "518.2"),
    ("518.20", "518.2"),
    ("0.00193", "0.00193"),
    ("0.001929756850636819760710150521", "0.0019298"),
    ("1.1252", "1.1252"),
    ("10.9", "10.9"),
    ("89.123456", "89.123"),
    ("12845.67", "12846"),  # integer digits are never rounded away
    ("1234567", "1234567"),
    ("0.000012345", "0.000012345"),
    ("2.000005", "2"),
    ("0.123455", "0.12346"),  # half-up, not banker's
    ("1E+3", "1000"),
])
def test_display(rate, shown):
    assert display(Decimal(rate)) == shown


rates = st.decimals(min_value=Decimal("1e-6"), max_value=Decimal("1e6"), places=8,
                    allow_nan=False, allow_infinity=False).filter(lambda d: d > 0)


def _close(a: Decimal, b: Decimal) -> bool:
    return abs(a - b) <= abs(b) * Decimal("1e-24")


@given(rates)
def test_invert_round_trips(x):
    back = invert(invert(q("USD/KZT", str(x))))
    assert back.pair == "USD/KZT"
    assert _close(back.rate, x)


@given(rates, rates, rates)
def test_cross_is_consistent_with_prices(pa, pb, pc):
    # A currency world given by each currency's price in some numeraire:
    # A/B = pa/pb. Deriving A/C from A/B and B/C, or from USD-quoted legs,
    # or by inverting C/A must all agree with pa/pc.
    ab, bc = q("KZT/RUB", str(pa / pb)), q("RUB/UZS", str(pb / pc))
    truth = pa / pc
    assert _close(cross(ab, bc).rate, truth)
    via_usd = derive("KZT/UZS", {"USD/KZT": q("USD/KZT", str(pb / pa)), "UZS/USD": q("UZS/USD", str(pc / pb))})
    assert _close(via_usd.rate, truth)
    reverse = derive("UZS/KZT", {"KZT/RUB": ab, "RUB/UZS": bc})
    assert _close(reverse.rate * cross(ab, bc).rate, Decimal(1))


@pytest.mark.parametrize("old, new, pct", [
    ("500", "505", "1"),
    ("505", "500", "-0.9900990099009900990099009901"),
    ("0.002", "0.00198", "-1"),
    ("3", "4", "33.33333333333333333333333333"),
])
def test_change_pct(old, new, pct):
    assert change_pct(Decimal(old), Decimal(new)) == Decimal(pct)


@pytest.mark.parametrize("old, new, pct", [
    ("505", "500", 1), ("7.07", "7", 1), ("303", "300", 1), ("99", "100", -1), ("0.0297", "0.03", -1),
])
def test_exact_one_percent_survives_inversion(old, new, pct):
    # 1/505 does not terminate, yet the move from 1/505 to 1/500 is exactly
    # +1%; a 1.0 threshold on the inverse pair must see exactly 1.
    a, b = invert(q("USD/KZT", old)), invert(q("USD/KZT", new))
    assert change_pct(a.rate, b.rate) == pct
