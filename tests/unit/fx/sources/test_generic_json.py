"""Generic JSON source: URL plus field paths, configured per publisher."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from services.fx.sources import RateConfigError, RateFormatError, generic_json
from services.fx.sources.generic_json import GenericJsonConfig

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "generic_json"

NESTED = {
    "url": "https://example.org/rates.json", "items": "data.rates", "code": "ccy", "rate": "rate",
    "nominal": "nominal", "document_date": "data.date", "date_format": "%d.%m.%Y", "quote": "KZT",
}
MAP = {"items": "rates", "code": "@key", "rate": "@value", "document_date": "updated",
       "date_format": "iso", "base": "EUR", "name": "ecb-json"}
PER_ITEM = {"items": "result", "code": "code", "rate": "value", "nominal": "units", "date": "valid_from",
            "quote": "KGS"}


def rows(config: dict, name_or_body) -> list[tuple[str, str, str]]:
    body = name_or_body if isinstance(name_or_body, bytes) else (DATA / name_or_body).read_bytes()
    quotes = generic_json.parse(body, GenericJsonConfig.from_dict(config))
    return [(q.at.isoformat(), q.pair, str(q.rate)) for q in quotes]


@pytest.mark.parametrize(
    "config, name, expected",
    [
        (NESTED, "nested_list.json", [
            ("2026-11-20T00:00:00+00:00", "USD/KZT", "518.2"),
            ("2026-11-20T00:00:00+00:00", "UZS/KZT", "0.0393"),  # JSON number 3.93 read exactly
            ("2026-11-20T00:00:00+00:00", "RUB/KZT", "6.41"),
        ]),
        # an object map, base-style rates, and a publication time kept (converted to UTC)
        (MAP, "object_map.json", [
            ("2026-11-20T13:15:00+00:00", "EUR/USD", "1.1252"),
            ("2026-11-20T13:15:00+00:00", "EUR/KZT", "583.27"),
        ]),
        # per-item dates: the 1998 item is stale
        (PER_ITEM, "per_item_dates.json", [
            ("2026-11-20T00:00:00+00:00", "USD/KGS", "87.45"),
            ("2026-11-20T00:00:00+00:00", "EUR/KGS", "101.3017"),
        ]),
        (NESTED, b'{"data": {"date": "20.11.2026", "rates": []}}', []),
        ({**NESTED, "items": "", "document_date": None, "date": "d"},
         b'[{"ccy": "usd", "rate": "1", "d": "01.01.2026"}]', [("2026-01-01T00:00:00+00:00", "USD/KZT", "1")]),
        ({**PER_ITEM, "date_format": "unix", "date": "t"}, b'{"result": [{"code": "USD", "value": 87, "t": 1795597200}]}',
         [("2026-11-25T09:00:00+00:00", "USD/KGS", "87")]),
    ],
)
def test_cases(config, name, expected):
    assert rows(config, name) == expected


def test_source_name_is_configured_name():
    quotes = generic_json.parse((DATA / "object_map.json").read_bytes(), GenericJsonConfig.from_dict(MAP))
    assert {q.source for q in quotes} == {"ecb-json"}
    assert quotes[0].at == datetime(2026, 11, 20, 13, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "config, body, message",
    [
        (NESTED, b'{"data": {}}', "generic-json: no `data.rates` in the document"),
        (NESTED, b'{"data": {"date": "20.11.2026", "rates": 5}}', "`data.rates` is int, expected a list or object"),
        (NESTED, b'{"data": {"date": "2026-11-20", "rates": [{"ccy": "USD", "rate": "1"}]}}',
         "generic-json: `data.date` '2026-11-20' is not a date"),
        (NESTED, b'{"data": {"date": "20.11.2026", "rates": [{"ccy": "USD", "rate": "abc"}]}}',
         "generic-json: item 1 (USD) `rate` 'abc' is not a number"),
        (NESTED, b'{"data": {"date": "20.11.2026", "rates": [{"rate": "1"}]}}', "generic-json: item 1 `ccy` is missing"),
        (NESTED, b'{"data": ', "generic-json: not JSON"),
        (MAP, b'{"updated": "yesterday", "rates": {"USD": 1}}', "`updated` 'yesterday' is not an ISO 8601 date"),
    ],
)
def test_malformed(config, body, message):
    with pytest.raises(RateFormatError) as err:
        rows(config, body)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"code": "c", "rate": "r", "date": "d"}, "exactly one of `quote`"),
        ({"code": "c", "rate": "r", "date": "d", "quote": "KZT", "base": "EUR"}, "exactly one of `quote`"),
        ({"code": "c", "rate": "r", "quote": "KZT"}, "exactly one of `date`"),
        ({"code": "c", "rate": "r", "quote": "tenge", "date": "d"}, "not a three-letter currency code"),
        ({"code": "c", "rate": "r", "quote": "KZT", "date": "d", "colour": "red"}, "unknown settings ['colour']"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(RateConfigError) as err:
        GenericJsonConfig.from_dict(config)
    assert message in str(err.value)
