"""National Bank of the Kyrgyz Republic: `XML/daily.xml` (and `XML/weekly.xml`).

    <?xml version="1.0" encoding="windows-1251" ?>
    <CurrencyRates Name="Daily Exchange Rates" Date="03.07.2024">
      <Currency ISOCode="USD"><Nominal>1</Nominal><Value>87,4500</Value></Currency>
      <Currency ISOCode="KZT"><Nominal>1</Nominal><Value>0,1842</Value></Currency>
      ...
    </CurrencyRates>

`Value` is som for `Nominal` units of `ISOCode`, with a decimal comma. The
weekly file adds <ValidFor> and quotes some currencies per 10 or 100 units.
The bank publishes the next day's rate in the evening: `Date` is the day the
rate applies, which may be tomorrow.
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

NAME = "nbkr"
QUOTE = "KGS"


def parse(body: bytes) -> list[Quote]:
    root = parse_xml(body, NAME)
    require_root(root, "CurrencyRates", NAME)
    elems = children(root, "Currency")
    if not elems:
        return []
    day = parse_date(root.get("Date"), f"{NAME}: <CurrencyRates Date>", ("%d.%m.%Y",))
    items: list[Item] = []
    for n, elem in enumerate(elems, start=1):
        code = parse_code(elem.get("ISOCode"), f"{NAME}: <Currency> {n} ISOCode")
        where = f"<Currency> {n} ({code})"
        build = quoted_in(
            QUOTE, code, child_text(elem, "Value"), child_text(elem, "Nominal"),
            f"{NAME}: {where} <Value>", f"{NAME}: {where} <Nominal>",
        )
        items.append(Item(where, day, build))
    return to_quotes(items, NAME)
