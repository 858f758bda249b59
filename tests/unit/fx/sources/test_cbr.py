"""CBR XML_daily: windows-1251, decimal commas, nominals up to 10000, VunitRate."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, cbr

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "cbr"


def rows(name_or_body) -> list[tuple[str, str, str]]:
    body = name_or_body if isinstance(name_or_body, bytes) else (DATA / name_or_body).read_bytes()
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in cbr.parse(body)]


FRIDAY = [
    ("2026-11-20", "AUD/RUB", "52.3061"),
    ("2026-11-20", "AMD/RUB", "0.205132"),   # per 100
    ("2026-11-20", "USD/RUB", "80.4221"),
    ("2026-11-20", "EUR/RUB", "93.1502"),
    ("2026-11-20", "KZT/RUB", "0.155198"),   # per 100
    ("2026-11-20", "KGS/RUB", "0.91965"),    # per 100
    ("2026-11-20", "CNY/RUB", "11.2907"),
    ("2026-11-20", "TMT/RUB", "22.9777"),
    ("2026-11-20", "TJS/RUB", "7.55012"),    # per 10
    ("2026-11-20", "UZS/RUB", "0.0066768"),  # per 10000
    ("2026-11-20", "JPY/RUB", "0.519374"),   # per 100
]


def test_fixture_is_windows_1251_with_cyrillic_names():
    body = (DATA / "XML_daily_2026-11-20.xml").read_bytes()
    assert body.startswith(b'<?xml version="1.0" encoding="windows-1251"?><ValCurs Date="20.11.2026"')
    assert "Казахстанских тенге".encode("cp1251") in body


@pytest.mark.parametrize(
    "name, expected",
    [
        ("XML_daily_2026-11-20.xml", FRIDAY),
        ("XML_daily_weekend.xml", FRIDAY),  # a weekend request repeats Friday's date and values
        ("XML_daily_2023-09-27_no_vunit.xml", [
            ("2023-09-27", "USD/RUB", "80.4221"), ("2023-09-27", "KZT/RUB", "0.155198"),
            ("2023-09-27", "UZS/RUB", "0.0066768"),
        ]),
    ],
)
def test_files(name, expected):
    assert rows(name) == expected


def valute(code, nominal, value, vunit=None):
    v = f"<VunitRate>{vunit}</VunitRate>" if vunit is not None else ""
    return (f'<Valute ID="R0"><NumCode>000</NumCode><CharCode>{code}</CharCode><Nominal>{nominal}</Nominal>'
            f"<Name>Имя</Name><Value>{value}</Value>{v}</Valute>")


def doc(*valutes, date="20.11.2026"):
    return (f'<?xml version="1.0" encoding="windows-1251"?><ValCurs Date="{date}" name="Foreign Currency Market">'
            + "".join(valutes) + "</ValCurs>").encode("cp1251")


@pytest.mark.parametrize(
    "body, expected",
    [
        (doc(valute("USD", 1, "80,4221")), [("2026-11-20", "USD/RUB", "80.4221")]),  # EUR missing: just absent
        (doc(valute("UZS", 10000, "66,7680", "0,00667680")), [("2026-11-20", "UZS/RUB", "0.0066768")]),
        (doc(valute("HUF", 100, "", "0,2617")), [("2026-11-20", "HUF/RUB", "0.2617")]),  # only VunitRate
        (doc(), []),
    ],
)
def test_cases(body, expected):
    assert rows(body) == expected


@pytest.mark.parametrize(
    "source, message",
    [
        ("bad_value.xml", "cbr: <Valute> 3 ID=R01235 (USD) <Value> '80,42,21' is not a number"),
        ("bad_no_charcode.xml", "cbr: <Valute> 2 ID=R01060 <CharCode> is missing"),
        ("bad_encoding_decl.xml", "cbr: not well-formed XML"),
        ("bad_entity.xml", "cbr: forbidden XML construct"),
        (doc(valute("USD", 1, "80,4221"), date="2026-11-20"), "cbr: <ValCurs Date> '2026-11-20' is not a date (expected %d.%m.%Y)"),
    ],
)
def test_malformed(source, message):
    with pytest.raises(RateFormatError) as err:
        rows(source)
    assert message in str(err.value)
