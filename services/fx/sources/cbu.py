"""Central Bank of Uzbekistan: `uz/arkhiv-kursov-valyut/json/[CCY/yyyy-mm-dd/]`.

    [{"id":1,"Code":"840","Ccy":"USD","CcyNm_RU":"Доллар США","CcyNm_UZ":"AQSH dollari",
      "CcyNm_UZC":"АҚШ доллари","CcyNm_EN":"US Dollar","Nominal":"1","Rate":"12650.50",
      "Diff":"-12.42","Date":"01.10.2024"}, ...]

A JSON list; `Rate`, `Nominal` and `Diff` are strings, `Date` is dd.mm.yyyy
per entry. `Rate` is sum for `Nominal` units of `Ccy`. Entries dated before
the newest Date in the file are stale and skipped. `[]` (an unknown
currency) yields no quotes.
"""
from __future__ import annotations

import json
from decimal import Decimal

from services.fx.quote import Quote
from services.fx.sources.common import (
    Item,
    RateFormatError,
    parse_code,
    parse_date,
    quoted_in,
    to_quotes,
)

NAME = "cbu"
QUOTE = "UZS"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return repr(value)
    return str(value)


def parse(body: bytes) -> list[Quote]:
    try:
        doc = json.loads(body.decode("utf-8-sig"), parse_float=Decimal)
    except UnicodeDecodeError as exc:
        raise RateFormatError(f"{NAME}: not UTF-8 ({exc})") from None
    except json.JSONDecodeError as exc:
        raise RateFormatError(f"{NAME}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(doc, list):
        raise RateFormatError(f"{NAME}: expected a JSON list of rates, got {type(doc).__name__}")
    items: list[Item] = []
    for n, entry in enumerate(doc, start=1):
        if not isinstance(entry, dict):
            raise RateFormatError(f"{NAME}: entry {n} is {type(entry).__name__}, expected an object")
        code = parse_code(_text(entry.get("Ccy")), f"{NAME}: entry {n} Ccy")
        where = f"entry {n} ({code})"
        day = parse_date(_text(entry.get("Date")), f"{NAME}: {where} Date", ("%d.%m.%Y",))
        build = quoted_in(
            QUOTE, code, _text(entry.get("Rate")), _text(entry.get("Nominal")),
            f"{NAME}: {where} Rate", f"{NAME}: {where} Nominal",
        )
        items.append(Item(where, day, build))
    return to_quotes(items, NAME)
