"""NBK daily rates file (get_rates.cfm): tables of cases over fixture files."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, nbk

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "nbk"


def rows(name: str) -> list[tuple[str, str, str]]:
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in nbk.parse((DATA / name).read_bytes())]


def test_full_file_in_file_order_with_nominals_divided_out():
    assert rows("get_rates_2026-11-20.xml") == [
        ("2026-11-20", "AUD/KZT", "338.07"),
        ("2026-11-20", "USD/KZT", "518.2"),
        ("2026-11-20", "EUR/KZT", "601.44"),
        ("2026-11-20", "IRR/KZT", "0.0123"),  # 12.3 per 1000
        ("2026-11-20", "CNY/KZT", "72.91"),
        ("2026-11-20", "KGS/KZT", "5.93"),
        ("2026-11-20", "RUB/KZT", "6.41"),
        ("2026-11-20", "TJS/KZT", "48.65"),
        ("2026-11-20", "UZS/KZT", "0.0393"),  # 3.93 per 100
        ("2026-11-20", "KRW/KZT", "0.3562"),  # 35.62 per 100
    ]


def test_quote_fields():
    quotes = nbk.parse((DATA / "get_rates_2026-11-20.xml").read_bytes())
    usd = quotes[1]
    assert usd.pair == "USD/KZT" and usd.rate == Decimal("518.2")
    assert usd.at == datetime(2026, 11, 20, tzinfo=timezone.utc)
    assert usd.source == "nbk" and usd.base == "USD" and usd.quote == "KZT"


@pytest.mark.parametrize(
    "name, pair, expected",
    [
        ("get_rates_2026-11-21.xml", "USD/KZT", ("2026-11-21", "518.2")),  # weekend: repeated, unchanged
        ("get_rates_2026-11-21.xml", "UZS/KZT", ("2026-11-21", "0.0393")),
        ("get_rates_missing_eur.xml", "RUB/KZT", ("2026-11-23", "6.39")),  # decimal comma
        ("get_rates_missing_eur.xml", "EUR/KZT", None),  # currency missing that day
    ],
)
def test_cases(name, pair, expected):
    found = {pair_: (at, rate) for at, pair_, rate in rows(name)}
    assert found.get(pair) == expected


def test_weekend_file_repeats_fridays_rates():
    friday = {p: r for _, p, r in rows("get_rates_2026-11-20.xml")}
    saturday = {p: r for _, p, r in rows("get_rates_2026-11-21.xml")}
    assert friday == saturday


def test_a_day_with_no_items_yields_nothing():
    assert rows("empty_day.xml") == []


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad_number.xml", "nbk: item 2 (USD) <description> '5l8.2' is not a number"),
        ("bad_truncated.xml", "nbk: not well-formed XML"),
        ("bad_no_date.xml", "nbk: <rates><date> is missing"),
    ],
)
def test_malformed_files(name, message):
    with pytest.raises(RateFormatError) as err:
        nbk.parse((DATA / name).read_bytes())
    assert message in str(err.value)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "the file is empty"),
        (b"<html><body>503</body></html>", "root element is <html>, expected <rates>"),
        (
            "<rates><date>20.11.2026</date><item><title>US</title><description>1</description>"
            "<quant>1</quant></item></rates>".encode(),
            "item 1 <title> 'US' is not a three-letter currency code",
        ),
        (
            b"<rates><date>20.11.2026</date><item><title>USD</title><description>518.2</description>"
            b"<quant>0</quant></item></rates>",
            "item 1 (USD) <quant> '0' is not a positive whole number",
        ),
        (
            b"<rates><date>31.11.2026</date><item><title>USD</title><description>518.2</description>"
            b"<quant>1</quant></item></rates>",
            "<rates><date> '31.11.2026' is not a date",
        ),
    ],
)
def test_malformed_inline(body, message):
    with pytest.raises(RateFormatError) as err:
        nbk.parse(body)
    assert message in str(err.value)
