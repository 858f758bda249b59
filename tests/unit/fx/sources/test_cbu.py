"""CBU JSON (arkhiv-kursov-valyut/json/): string fields, per-entry dd.mm.yyyy dates."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, cbu

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "cbu"


def rows(name_or_body) -> list[tuple[str, str, str]]:
    body = name_or_body if isinstance(name_or_body, bytes) else (DATA / name_or_body).read_bytes()
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in cbu.parse(body)]


def entry(ccy="USD", rate="12045.18", nominal="1", date="20.11.2026", **extra):
    return {"id": 1, "Code": "840", "Ccy": ccy, "CcyNm_RU": "Доллар США", "CcyNm_UZ": "AQSH dollari",
            "CcyNm_UZC": "АҚШ доллари", "CcyNm_EN": "US Dollar", "Nominal": nominal, "Rate": rate,
            "Diff": "-12.42", "Date": date, **extra}


def doc(*entries) -> bytes:
    return json.dumps(list(entries), ensure_ascii=False).encode()


def test_full_list():
    assert rows("all_2026-11-20.json") == [
        ("2026-11-20", "USD/UZS", "12045.18"),
        ("2026-11-20", "EUR/UZS", "13957.01"),
        ("2026-11-20", "RUB/UZS", "148.93"),
        ("2026-11-20", "KZT/UZS", "23.24"),
        ("2026-11-20", "KGS/UZS", "137.74"),
        ("2026-11-20", "TJS/UZS", "1126.57"),
        ("2026-11-20", "IRR/UZS", "0.286"),  # 2.86 per 10
        ("2026-11-20", "VND/UZS", "0.457"),  # 4.57 per 10
    ]


@pytest.mark.parametrize(
    "source, expected",
    [
        # one currency asked for a Sunday: the answer carries Friday's date
        ("usd_2026-11-22.json", [("2026-11-20", "USD/UZS", "12045.18")]),
        # an older-dated entry is stale; USD listed twice unchanged is kept once
        ("stale_and_repeat.json", [("2026-11-20", "USD/UZS", "12045.18"), ("2026-11-20", "EUR/UZS", "13957.01"),
                                   ("2026-11-20", "RUB/UZS", "148.93")]),
        ("empty.json", []),  # unknown currency: []
        (doc(entry(rate="12045,18")), [("2026-11-20", "USD/UZS", "12045.18")]),  # decimal comma
        (doc(entry(rate=12045.18, nominal=1)), [("2026-11-20", "USD/UZS", "12045.18")]),  # numbers, not strings
        (doc(entry(ccy="UZS", rate="1")), []),  # the quote currency itself
        (b"\xef\xbb\xbf" + doc(entry()), [("2026-11-20", "USD/UZS", "12045.18")]),  # UTF-8 BOM
    ],
)
def test_cases(source, expected):
    assert rows(source) == expected


@pytest.mark.parametrize(
    "source, message",
    [
        ("bad_rate.json", "cbu: entry 2 (EUR) Rate '13 957,01 сум' is not a number"),
        ("bad_json.json", "cbu: not JSON: "),
        ("bad_date.json", "cbu: entry 1 (USD) Date '2026-11-20' is not a date"),
        (b'{"error": "not found"}', "cbu: expected a JSON list of rates, got dict"),
        (doc(entry(), "USD"), "cbu: entry 2 is str, expected an object"),
        (doc(entry(ccy=None)), "cbu: entry 1 Ccy is missing"),
        (doc(entry(nominal="0")), "cbu: entry 1 (USD) Nominal '0' is not a positive whole number"),
        (b"\xff\xfe[]", "cbu: not UTF-8"),
    ],
)
def test_malformed(source, message):
    with pytest.raises(RateFormatError) as err:
        rows(source)
    assert message in str(err.value)
