"""National Bank of Kazakhstan: the daily rates file `get_rates.cfm?fdate=dd.mm.yyyy`.

    <rates>
      <generator>...</generator><title>...</title><link>...</link>
      <description>...</description><copyright>...</copyright>
      <date>06.05.2024</date>
      <item>
        <fullname>ИРАНСКИЙ РИАЛ</fullname><title>IRR</title>
        <description>10.5</description><quant>1000</quant>
        <index></index><change>0.00</change>
      </item>
      ...
    </rates>

`description` is tenge for `quant` units of `title`: IRR 10.5 per 1000 -> IRR/KZT = 0.0105.
The document-level <title>/<description> are the feed's own and are ignored.
A file with no <item> at all (nothing published) yields no quotes.
"""
from __future__ import annotations

from services.fx.quote import Quote
from services.fx.sources.common import (
    Item,
    child_text,
    children,
    parse_code,
    parse_date,
    parse_xml,
    quoted_in,
    require_root,
    to_quotes,
)

NAME = "nbk"
QUOTE = "KZT"


def parse(body: bytes) -> list[Quote]:
    root = parse_xml(body, NAME)
    require_root(root, "rates", NAME)
    elems = children(root, "item")
    if not elems:
        return []
    day = parse_date(child_text(root, "date"), f"{NAME}: <rates><date>", ("%d.%m.%Y",))
    items: list[Item] = []
    for n, elem in enumerate(elems, start=1):
        code = parse_code(child_text(elem, "title"), f"{NAME}: item {n} <title>")
        where = f"item {n} ({code})"
        build = quoted_in(
            QUOTE, code, child_text(elem, "description"), child_text(elem, "quant"),
            f"{NAME}: {where} <description>", f"{NAME}: {where} <quant>",
        )
        items.append(Item(where, day, build))
    return to_quotes(items, NAME)
