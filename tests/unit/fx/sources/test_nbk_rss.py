"""NBK RSS feed (rates_all.xml): per-item pubDate, stale items skipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.fx.sources import RateFormatError, nbk_rss

DATA = Path(__file__).resolve().parents[3] / "data" / "rates" / "nbk_rss"


def rows(body: bytes) -> list[tuple[str, str, str]]:
    return [(q.at.date().isoformat(), q.pair, str(q.rate)) for q in nbk_rss.parse(body)]


EXPECTED = [
    ("2026-11-20", "AUD/KZT", "338.07"),
    ("2026-11-20", "USD/KZT", "518.2"),
    ("2026-11-20", "EUR/KZT", "601.44"),
    ("2026-11-20", "KGS/KZT", "5.93"),
    ("2026-11-20", "RUB/KZT", "6.41"),
    ("2026-11-20", "TJS/KZT", "48.65"),
    ("2026-11-20", "UZS/KZT", "0.0393"),
]


@pytest.mark.parametrize("name", ["rates_all.xml", "rates_all_short_year.xml"])
def test_feed_with_stale_items_skipped(name):
    # BYR (2016) and LVL (2013) are still listed with their last pubDate: stale.
    assert rows((DATA / name).read_bytes()) == EXPECTED


def test_source_name():
    assert {q.source for q in nbk_rss.parse((DATA / "rates_all.xml").read_bytes())} == {"nbk-rss"}


def item(code, pub, value, quant="1"):
    pub_el = f"<pubDate>{pub}</pubDate>" if pub is not None else ""
    return (
        f"<item><title>{code}</title>{pub_el}<description>{value}</description>"
        f"<quant>{quant}</quant><index>UP</index><change>0.10</change><link></link></item>"
    )


def feed(*items):
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Official exchange rates of National Bank of Republic Kazakhstan</title>"
            + "".join(items) + "</channel></rss>").encode()


@pytest.mark.parametrize(
    "items, expected",
    [
        # newest date wins even when the stale item comes first
        ([item("XEU", "01.01.2001", "100"), item("USD", "20.11.2026", "518.2")],
         [("2026-11-20", "USD/KZT", "518.2")]),
        # a currency repeated unchanged is kept once
        ([item("USD", "20.11.2026", "518.2"), item("USD", "20.11.2026", "518.20")],
         [("2026-11-20", "USD/KZT", "518.2")]),
        # no pubDate: cannot be dated, skipped
        ([item("USD", "20.11.2026", "518.2"), item("EUR", None, "601.44")],
         [("2026-11-20", "USD/KZT", "518.2")]),
        # junk in a stale item does not fail the file
        ([item("ZWD", "01.01.2009", "n/a"), item("USD", "20.11.2026", "518,2")],
         [("2026-11-20", "USD/KZT", "518.2")]),
        ([item("UZS", "20.11.26", "3.93", "100")], [("2026-11-20", "UZS/KZT", "0.0393")]),
        ([], []),
    ],
)
def test_cases(items, expected):
    assert rows(feed(*items)) == expected


@pytest.mark.parametrize(
    "body, message",
    [
        ((DATA / "bad_quant.xml").read_bytes(), "nbk-rss: item 1 (AUD) <quant> '0' is not a positive whole number"),
        ((DATA / "bad_date.xml").read_bytes(), "nbk-rss: item 1 (AUD) <pubDate> '2026/11/20' is not a date"),
        ((DATA / "bad_root.xml").read_bytes(), "nbk-rss: root element is <html>, expected <rss>"),
        (b"<rss version='2.0'></rss>", "no <channel>"),
        (feed(item("USD", "20.11.2026", "518.2"), item("USD", "20.11.2026", "519.0")),
         "item 2 (USD) gives USD/KZT = 519, but item 1 (USD) gave 518.2"),
        (feed(item("USD", "20.11.2026", "-1")), "item 1 (USD) <description> -1 is not a positive rate"),
    ],
)
def test_malformed(body, message):
    with pytest.raises(RateFormatError) as err:
        nbk_rss.parse(body)
    assert message in str(err.value)
