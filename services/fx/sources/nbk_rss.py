"""National Bank of Kazakhstan: the RSS feed `rss/rates_all.xml`.

    <rss version="2.0"><channel>
      <generator>...</generator><title>...</title><link>...</link>
      <description>...</description><language>ru</language><copyright>...</copyright>
      <item>
        <title>USD</title><pubDate>03.04.2024</pubDate>
        <description>419.16</description><quant>1</quant>
        <index>UP</index><change>0.00</change><link/>
      </item>
      ...
    </channel></rss>

Each item carries its own pubDate (dd.mm.yyyy; dd.mm.yy is also accepted).
The feed keeps listing currencies the bank no longer quotes, with their old
pubDate: items dated before the newest pubDate in the file are stale and
skipped. An item with no pubDate cannot be dated and is skipped too.
"""
from __future__ import annotations

from services.fx.quote import Quote
from services.fx.sources.common import (
    Item,
    RateFormatError,
    child_text,
    children,
    local,
    parse_code,
    parse_date,
    parse_xml,
    quoted_in,
    to_quotes,
)

NAME = "nbk-rss"
QUOTE = "KZT"
DATE_FORMATS = ("%d.%m.%Y", "%d.%m.%y")


def parse(body: bytes) -> list[Quote]:
    root = parse_xml(body, NAME)
    if local(root.tag) != "rss":
        raise RateFormatError(f"{NAME}: root element is <{local(root.tag)}>, expected <rss>")
    channel = children(root, "channel")
    if not channel:
        raise RateFormatError(f"{NAME}: no <channel> in <rss>")
    items: list[Item] = []
    for n, elem in enumerate(children(channel[0], "item"), start=1):
        code = parse_code(child_text(elem, "title"), f"{NAME}: item {n} <title>")
        where = f"item {n} ({code})"
        pub = child_text(elem, "pubDate")
        if not pub:
            continue
        day = parse_date(pub, f"{NAME}: {where} <pubDate>", DATE_FORMATS)
        build = quoted_in(
            QUOTE, code, child_text(elem, "description"), child_text(elem, "quant"),
            f"{NAME}: {where} <description>", f"{NAME}: {where} <quant>",
        )
        items.append(Item(where, day, build))
    return to_quotes(items, NAME)
