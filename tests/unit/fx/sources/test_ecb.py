"""ECB euro reference rates (gesmes envelope, nested Cubes)."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, ecb

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "ecb"

DAILY = [
    ("2026-11-20", "EUR/USD", "1.1252"),
    ("2026-11-20", "EUR/JPY", "163.87"),
    ("2026-11-20", "EUR/CZK", "24.981"),
    ("2026-11-20", "EUR/GBP", "0.8432"),
    ("2026-11-20", "EUR/HUF", "401.15"),
    ("2026-11-20", "EUR/CNY", "8.1235"),
    ("2026-11-20", "EUR/TRY", "47.301"),
    ("2026-11-20", "EUR/KRW", "1581.5"),
]


def rows(name_or_body) -> list[tuple[str, str, str]]:
    body = name_or_body if isinstance(name_or_body, bytes) else (DATA / name_or_body).read_bytes()
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in ecb.parse(body)]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("eurofxref-daily.xml", DAILY),
        ("eurofxref-hist-90d.xml", DAILY),  # older days are stale: only the newest day
    ],
)
def test_files(name, expected):
    assert rows(name) == expected


def test_source_and_base():
    quotes = ecb.parse((DATA / "eurofxref-daily.xml").read_bytes())
    assert {q.source for q in quotes} == {"ecb"} and {q.base for q in quotes} == {"EUR"}


@pytest.mark.parametrize(
    "source, message",
    [
        ("bad_rate.xml", "ecb: <Cube time=2026-11-20> JPY rate 'N/A' is not a number"),
        ("bad_time.xml", "ecb: <Cube time> '20.11.2026' is not a date"),
        (b"<Envelope/>", "ecb: no <Cube> in <gesmes:Envelope>"),
        (b"<rates/>", "ecb: root element is <rates>"),
    ],
)
def test_malformed(source, message):
    with pytest.raises(RateFormatError) as err:
        rows(source)
    assert message in str(err.value)
