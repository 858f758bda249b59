"""NBT XML (kurs/export_xml.php): declared windows-1251, often UTF-8 inside."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, nbt

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "nbt"


def rows(name_or_body) -> list[tuple[str, str, str]]:
    body = name_or_body if isinstance(name_or_body, bytes) else (DATA / name_or_body).read_bytes()
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in nbt.parse(body)]


FULL = [
    ("2026-11-20", "USD/TJS", "10.652"),
    ("2026-11-20", "EUR/TJS", "12.3307"),
    ("2026-11-20", "RUB/TJS", "0.132"),
    ("2026-11-20", "CNY/TJS", "1.496"),
    ("2026-11-20", "KZT/TJS", "0.020551"),   # per 100
    ("2026-11-20", "KGS/TJS", "0.1218"),
    ("2026-11-20", "UZS/TJS", "0.0008843"),  # per 1000
    ("2026-11-20", "IRR/TJS", "0.00025316"),  # per 10000
]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("export_2026-11-20.xml", FULL),       # declared windows-1251, UTF-8 bytes (what NBT serves)
        ("export_cp1251_body.xml", FULL),      # really windows-1251
        ("export_dotted_date_comma.xml", FULL[:3]),  # dd.mm.yyyy date, decimal commas
    ],
)
def test_files(name, expected):
    assert rows(name) == expected


def test_fixture_encodings():
    utf8 = (DATA / "export_2026-11-20.xml").read_bytes()
    assert b'encoding="windows-1251"' in utf8 and "Доллар США".encode("utf-8") in utf8
    cp = (DATA / "export_cp1251_body.xml").read_bytes()
    assert "Доллар США".encode("cp1251") in cp


def test_missing_currency_and_source():
    body = ('<?xml version="1.0" encoding="windows-1251" ?><ValCurs Date="2026-11-21" name="Foreign Currency Market">'
            '<Valute ID="978"><CharCode>EUR</CharCode><Nominal>1</Nominal><Name>Евро</Name><Value>12.3307</Value>'
            "</Valute></ValCurs>").encode("cp1251")
    quotes = nbt.parse(body)
    assert [(q.pair, q.source) for q in quotes] == [("EUR/TJS", "nbt")]


@pytest.mark.parametrize(
    "source, message",
    [
        ("bad_nominal.xml", "nbt: <Valute> 2 ID=398 (KZT) <Nominal> 'сто' is not a number"),
        ("bad_date.xml", "nbt: <ValCurs Date> '20 ноября 2026' is not a date"),
        (b"<ValCurs Date='2026-11-20'><Valute ID='840'><Nominal>1</Nominal><Value>10.6</Value></Valute></ValCurs>",
         "nbt: <Valute> 1 ID=840 <CharCode> is missing"),
        (b"<ValCurs Date='2026-11-20'><Valute ID='840'><CharCode>USD</CharCode><Value>10.6</Value></ValCurs>",
         "nbt: not well-formed XML"),
    ],
)
def test_malformed(source, message):
    with pytest.raises(RateFormatError) as err:
        rows(source)
    assert message in str(err.value)
