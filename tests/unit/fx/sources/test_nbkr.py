"""NBKR daily/weekly XML: windows-1251, decimal commas, nominals."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, nbkr

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "nbkr"


def rows(name_or_body) -> list[tuple[str, str, str]]:
    body = name_or_body if isinstance(name_or_body, bytes) else (DATA / name_or_body).read_bytes()
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in nbkr.parse(body)]


def test_fixture_is_windows_1251():
    assert (DATA / "daily_2026-11-20.xml").read_bytes().startswith(
        b'<?xml version="1.0" encoding="windows-1251" ?>\n<CurrencyRates Name="Daily Exchange Rates" Date="20.11.2026">'
    )


@pytest.mark.parametrize(
    "name, expected",
    [
        ("daily_2026-11-20.xml", [
            ("2026-11-20", "USD/KGS", "87.45"),
            ("2026-11-20", "EUR/KGS", "101.3017"),
            ("2026-11-20", "CNY/KGS", "12.2841"),
            ("2026-11-20", "KZT/KGS", "0.1688"),
            ("2026-11-20", "RUB/KGS", "1.0874"),
        ]),
        ("weekly_2026-11-20.xml", [
            ("2026-11-20", "GBP/KGS", "114.7321"),
            ("2026-11-20", "JPY/KGS", "0.56749"),   # per 10
            ("2026-11-20", "UZS/KGS", "0.006912"),  # per 100
            ("2026-11-20", "KRW/KGS", "0.060185"),  # per 100
            ("2026-11-20", "TJS/KGS", "8.1963"),
        ]),
    ],
)
def test_files(name, expected):
    assert rows(name) == expected


def test_rate_repeated_unchanged_over_the_weekend():
    friday = dict((p, r) for _, p, r in rows("daily_2026-11-20.xml"))
    monday = dict((p, r) for _, p, r in rows("daily_2026-11-23.xml"))
    assert friday["USD/KGS"] == monday["USD/KGS"]
    assert {a for a, _, _ in rows("daily_2026-11-23.xml")} == {"2026-11-23"}


def test_missing_currency_is_simply_absent():
    body = ('<?xml version="1.0" encoding="windows-1251" ?><CurrencyRates Name="Daily Exchange Rates" '
            'Date="21.11.2026"><Currency ISOCode="USD"><Nominal>1</Nominal><Value>87,45</Value></Currency>'
            "</CurrencyRates>").encode("cp1251")
    assert rows(body) == [("2026-11-21", "USD/KGS", "87.45")]


@pytest.mark.parametrize(
    "body, message",
    [
        ((DATA / "bad_value.xml").read_bytes(), "nbkr: <Currency> 2 (EUR) <Value> is empty"),
        ((DATA / "bad_code.xml").read_bytes(), "nbkr: <Currency> 2 ISOCode 'Euro' is not a three-letter currency code"),
        (b'<CurrencyRates Name="Daily Exchange Rates"><Currency ISOCode="USD"><Nominal>1</Nominal>'
         b"<Value>87,45</Value></Currency></CurrencyRates>", "nbkr: <CurrencyRates Date> is missing"),
        (b"<CurrencyRates Date='20.11.2026'><Currency ISOCode='USD'><Nominal>1,5</Nominal>"
         b"<Value>87,45</Value></Currency></CurrencyRates>", "<Nominal> '1,5' is not a positive whole number"),
        (b"<ValCurs/>", "root element is <ValCurs>, expected <CurrencyRates>"),
    ],
)
def test_malformed(body, message):
    with pytest.raises(RateFormatError) as err:
        nbkr.parse(body)
    assert message in str(err.value)
