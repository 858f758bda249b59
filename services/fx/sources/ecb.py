"""European Central Bank: euro reference rates `eurofxref-daily.xml` (also -hist-90d, -hist).

    <gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
                     xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
      <gesmes:subject>Reference rates</gesmes:subject>
      <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
      <Cube>
        <Cube time="2025-05-09">
          <Cube currency="USD" rate="1.1252"/>
          ...
        </Cube>
      </Cube>
    </gesmes:Envelope>

`rate` is units of `currency` per 1 euro: USD 1.1252 -> EUR/USD = 1.1252.
A history file has one dated Cube per day; only the newest day is kept
(older days are stale, as in every adapter).
"""
from __future__ import annotations

from decimal import Decimal

from services.fx.quote import Quote
from services.fx.sources.common import (
    Build,
    Item,
    RateFormatError,
    children,
    local,
    parse_code,
    parse_date,
    parse_decimal,
    parse_xml,
    per_unit,
    to_quotes,
)

NAME = "ecb"
BASE = "EUR"


def _build(code: str, text: str | None, what: str) -> Build:
    def build() -> tuple[str, Decimal] | None:
        if code == BASE:
            return None
        return f"{BASE}/{code}", per_unit(parse_decimal(text, what), 1, what)

    return build


def parse(body: bytes) -> list[Quote]:
    root = parse_xml(body, NAME)
    if local(root.tag) != "Envelope":
        raise RateFormatError(f"{NAME}: root element is <{local(root.tag)}>, expected <gesmes:Envelope>")
    outer = children(root, "Cube")
    if not outer:
        raise RateFormatError(f"{NAME}: no <Cube> in <gesmes:Envelope>")
    items: list[Item] = []
    for day_cube in children(outer[0], "Cube"):
        time = day_cube.get("time")
        day = parse_date(time, f"{NAME}: <Cube time>", ("%Y-%m-%d",))
        for n, cube in enumerate(children(day_cube, "Cube"), start=1):
            code = parse_code(cube.get("currency"), f"{NAME}: <Cube time={time}> entry {n} currency")
            where = f"<Cube time={time}> {code}"
            items.append(Item(where, day, _build(code, cube.get("rate"), f"{NAME}: {where} rate")))
    return to_quotes(items, NAME)
