"""National Bank of Tajikistan: `kurs/export_xml.php?date=yyyy-mm-dd&export=xmlout`.

    <?xml version="1.0" encoding="windows-1251" ?>
    <ValCurs Date="2024-05-20" name="Foreign Currency Market">
      <Valute ID="840">
        <CharCode>USD</CharCode><Nominal>1</Nominal><Name>Доллар США</Name><Value>10.9142</Value>
      </Valute>
      ...
    </ValCurs>

`Value` is somoni for `Nominal` units of `CharCode`. The root `Date` is read
as yyyy-mm-dd or dd.mm.yyyy, and values with a decimal point or comma: the
public code we could read does not settle either. A file that declares
windows-1251 but is UTF-8 is read as UTF-8 (see common.parse_xml).
"""
from __future__ import annotations

from services.fx.quote import Quote
from services.sources.rates.common import (
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

NAME = "nbt"
QUOTE = "TJS"
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")


def parse(body: bytes) -> list[Quote]:
    root = parse_xml(body, NAME)
    require_root(root, "ValCurs", NAME)
    elems = children(root, "Valute")
    if not elems:
        return []
    day = parse_date(root.get("Date"), f"{NAME}: <ValCurs Date>", DATE_FORMATS)
    items: list[Item] = []
    for n, elem in enumerate(elems, start=1):
        ident = elem.get("ID")
        label = f"<Valute> {n}" + (f" ID={ident}" if ident else "")
        code = parse_code(child_text(elem, "CharCode"), f"{NAME}: {label} <CharCode>")
        where = f"{label} ({code})"
        build = quoted_in(
            QUOTE, code, child_text(elem, "Value"), child_text(elem, "Nominal"),
            f"{NAME}: {where} <Value>", f"{NAME}: {where} <Nominal>",
        )
        items.append(Item(where, day, build))
    return to_quotes(items, NAME)
