"""Shared parsing helpers and the adapter registry."""
from __future__ import annotations

from decimal import Decimal

import pytest

from services.fx import sources as rates
from services.fx.sources.common import (
    RateFormatError,
    format_rate,
    parse_date,
    parse_decimal,
    parse_nominal,
    per_unit,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("518.2", "518.2"), ("87,4500", "87.4500"), (" 1 234,56 ", "1234.56"), ("1\u00a0234,5", "1234.5"),
        ("12,345.67", "12345.67"), ("1.234,5", "1234.5"), ("0,0393", "0.0393"), (".5", ".5"),
    ],
)
def test_parse_decimal(text, expected):
    assert parse_decimal(text, "x") == Decimal(expected)


@pytest.mark.parametrize("text", ["", None, "abc", "1,2,3", "1e5", "NaN", "Infinity", "--1"])
def test_parse_decimal_rejects(text):
    with pytest.raises(RateFormatError):
        parse_decimal(text, "x")


@pytest.mark.parametrize(
    "value, nominal, expected",
    [("3.93", 100, "0.0393"), ("12.3", 1000, "0.0123"), ("66,7680", 10000, "0.0066768"), ("518.20", 1, "518.2"),
     ("1000", 1, "1000"), ("10", 4, "2.5")],
)
def test_per_unit_exact(value, nominal, expected):
    assert str(per_unit(parse_decimal(value, "v"), nominal, "v")) == expected


@pytest.mark.parametrize(
    "value, text",
    [("0.0393", "0.0393"), ("518.2000", "518.2"), ("1E+3", "1000"), ("1.1252", "1.1252"), ("0.00000001", "0.00000001"),
     ("2.5E-7", "0.00000025"), ("100", "100")],
)
def test_format_rate_never_scientific(value, text):
    assert format_rate(Decimal(value)) == text


@pytest.mark.parametrize("text, ok", [("1", 1), ("100", 100), (" 10 ", 10), ("0", None), ("1.5", None), ("-1", None)])
def test_parse_nominal(text, ok):
    if ok is None:
        with pytest.raises(RateFormatError):
            parse_nominal(text, "n")
    else:
        assert parse_nominal(text, "n") == ok


@pytest.mark.parametrize(
    "text, formats, expected",
    [("20.11.2026", ("%d.%m.%Y",), "2026-11-20"), ("20.11.26", ("%d.%m.%Y", "%d.%m.%y"), "2026-11-20"),
     ("2026-11-20", ("%Y-%m-%d",), "2026-11-20"), ("1.2.2026", ("%d.%m.%Y",), "2026-02-01")],
)
def test_parse_date(text, formats, expected):
    assert parse_date(text, "d", formats).isoformat() == expected


def test_four_digit_year_format_refuses_two_digits():
    with pytest.raises(RateFormatError):
        parse_date("20.11.26", "d", ("%d.%m.%Y",))


def test_registry_is_explicit_and_complete():
    assert list(rates.FILE_ADAPTERS) == ["nbk", "nbk-rss", "nbkr", "cbu", "nbt", "cbr", "ecb"]
    assert set(rates.ADAPTERS) == set(rates.FILE_ADAPTERS) | {"generic-json", "constant"}
    for name, module in rates.FILE_ADAPTERS.items():
        assert module.NAME == name and callable(module.parse)
