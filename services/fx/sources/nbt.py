"""National Bank of Tajikistan: `kurs/export_xml.php?date=yyyy-mm-dd&export=xmlout`.

    <?xml version="1.0" encoding="windows-1251" ?>
    <ValCurs Date="2024-05-20" name="Foreign Currency Market">
      <Valute ID="840">
        <CharCode>USD</CharCode><Nominal>1</Nominal><Name>Доллар США</Name><Value>10.9142</Value>
      </Valute>
      ...
    </ValCurs>

`Value` is somoni for `Nominal` units of `CharCode` (decimal point; a comma
is accepted too). NBT serves UTF-8 bytes under a windows-1251 declaration:
such a file is read as UTF-8 (see common.parse_xml); a real windows-1251
file works as well. The root `Date` style is not settled by the public code
we could read: yyyy-mm-dd, dd.mm.yyyy, dd/mm/yyyy and yyyy.mm.dd are accepted.
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

NAME = "nbt"
QUOTE = "TJS"
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y.%m.%d")


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
