"""Central Bank of Russia: `scripts/XML_daily.asp[?date_req=dd/mm/yyyy]`.

    <?xml version="1.0" encoding="windows-1251"?>
    <ValCurs Date="13.12.2025" name="Foreign Currency Market">
      <Valute ID="R01335">
        <NumCode>398</NumCode><CharCode>KZT</CharCode><Nominal>100</Nominal>
        <Name>Казахстанских тенге</Name><Value>15,0452</Value><VunitRate>0,150452</VunitRate>
      </Valute>
      ...
    </ValCurs>

windows-1251, decimal commas. `Value` is roubles for `Nominal` units; the
rate per unit is Value / Nominal (exact). `VunitRate` (newer files) is
used only when `Value` is absent. On weekends and holidays the file carries
the date of the last rate set, so a Saturday fetch repeats Friday's date.
"""
from __future__ import annotations

from decimal import Decimal

from services.fx.quote import Quote
from services.fx.sources.common import (
    Build,
    Item,
    child_text,
    children,
    parse_code,
    parse_date,
    parse_decimal,
    parse_xml,
    per_unit,
    quoted_in,
    require_root,
    to_quotes,
)

NAME = "cbr"
QUOTE = "RUB"


def _from_unit_rate(code: str, text: str | None, what: str) -> Build:
    def build() -> tuple[str, Decimal] | None:
        if code == QUOTE:
            return None
        return f"{code}/{QUOTE}", per_unit(parse_decimal(text, what), 1, what)

    return build


def parse(body: bytes) -> list[Quote]:
    root = parse_xml(body, NAME)
    require_root(root, "ValCurs", NAME)
    elems = children(root, "Valute")
    if not elems:
        return []
    day = parse_date(root.get("Date"), f"{NAME}: <ValCurs Date>", ("%d.%m.%Y",))
    items: list[Item] = []
    for n, elem in enumerate(elems, start=1):
        ident = elem.get("ID")
        label = f"<Valute> {n}" + (f" ID={ident}" if ident else "")
        code = parse_code(child_text(elem, "CharCode"), f"{NAME}: {label} <CharCode>")
        where = f"{label} ({code})"
        value = child_text(elem, "Value")
        unit = child_text(elem, "VunitRate")
        if not value and unit:
            build = _from_unit_rate(code, unit, f"{NAME}: {where} <VunitRate>")
        else:
            build = quoted_in(
                QUOTE, code, value, child_text(elem, "Nominal"),
                f"{NAME}: {where} <Value>", f"{NAME}: {where} <Nominal>",
            )
        items.append(Item(where, day, build))
    return to_quotes(items, NAME)
