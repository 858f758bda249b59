"""services/fx/render.py with the real templates."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.fx import render as render_fx
from services.fx.pairs import reciprocal
from services.fx.rules import Alert

AT = datetime(2026, 11, 21, tzinfo=timezone.utc)
FROM_AT = datetime(2026, 11, 20, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 21, 6, 30, 5, tzinfo=timezone.utc)
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32

DERIVED = Alert("tenge-weakens", "KZT/USD", AT, reciprocal(Decimal(500)), reciprocal(Decimal(510)),
                Decimal("-1.960784313725490196078431373"), FROM_AT, "previous",
                "change >= 1.0% down over previous", "nbk")
LEVEL = Alert("usd-above-520", "USD/KZT", AT, Decimal("518.2"), Decimal("521.04"), Decimal("0.548051"),
              FROM_AT, "previous", "above 520", "nbk")
WINDOW = Alert("som-week", "KGS/USD", datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc),
               Decimal("0.01143"), Decimal("0.01120"), Decimal("-2.012248"), FROM_AT, "7d",
               "change >= 2% down over 7d", "nbkr+ecb")

# (case, alert, what both email parts must say)
FIELDS = [
    ("derived pair", DERIVED, ["KZT/USD", "0.002", "0.0019608", "-1.96%", "previous", "nbk",
                               "2026-11-21", "2026-11-20", "change >= 1.0% down over previous", "tenge-weakens"]),
    ("level rule", LEVEL, ["USD/KZT", "518.2", "521.04", "+0.55%", "above 520", "nbk", "2026-11-21"]),
    ("window and a published time", WINDOW, ["KGS/USD", "0.01143", "0.0112", "-2.01%", "7d",
                                             "nbkr+ecb", "2026-11-21 09:30 UTC"]),
]


@pytest.mark.parametrize("case, alert, expected", FIELDS, ids=[f[0] for f in FIELDS])
def test_email_says_pair_rates_change_window_source_and_time(case, alert, expected):
    mail = render_fx.fx_email(alert, alert.rule, chart_png=PNG, now=NOW)
    for text in expected:
        assert text in mail["text"], text
        assert text.replace(">", "&gt;") in mail["html"], text
    assert alert.pair in mail["subject"] and "\n" not in mail["subject"]


def test_chart_rides_inline_and_the_html_points_at_it():
    mail = render_fx.fx_email(DERIVED, "tenge-weakens", chart_png=PNG, now=NOW)
    [image] = mail["inline_images"]
    assert image["content_type"] == "image/png" and base64.b64decode(image["data_b64"]) == PNG
    assert f'<img src="cid:{image["cid"]}"' in mail["html"]
    bare = render_fx.fx_email(DERIVED, "tenge-weakens", now=NOW)
    assert "inline_images" not in bare and "<img" not in bare["html"]


NEWS = [
    ("a plain link", {"title": "Tenge slides", "link": "https://news.example/1", "country": "KZ"},
     ['<a href="https://news.example/1">Tenge slides</a>'], ["https://news.example/1"]),
    ("a javascript: link is shown, not linked",
     {"title": "Click", "link": "javascript:alert(1)", "country": "KZ"},
     ["Click"], ["javascript:alert(1)"]),
    ("html in a title is escaped", {"title": "<script>x</script> & co", "link": "https://n.example/2",
                                    "country": "KZ"},
     ["&lt;script&gt;x&lt;/script&gt; &amp; co"], ["<script>x</script> & co"]),
]


@pytest.mark.parametrize("case, item, in_html, in_text", NEWS, ids=[n[0] for n in NEWS])
def test_news_links(case, item, in_html, in_text):
    mail = render_fx.fx_email(DERIVED, "tenge-weakens", news=[{**item, "published": AT}], now=NOW)
    assert "Latest news about Kazakhstan" in mail["text"]
    for text in in_html:
        assert text in mail["html"]
    for text in in_text:
        assert text in mail["text"]
    assert 'href="javascript' not in mail["html"] and "<script>" not in mail["html"]


@pytest.mark.parametrize("title", ['He said "stop"', "line\nbreak", "\\ back", "</script>", "тенге"])
def test_webhook_is_plain_json_with_exact_rates(title):
    news = [{"title": title, "link": "https://n.example/1", "published": AT, "country": "KZ"}]
    body = render_fx.fx_webhook(DERIVED, "tenge-weakens", news=news, now=NOW)
    assert json.loads(json.dumps(body)) == body
    assert body["type"] == "tulpar.fx_alert"
    assert (body["pair"], body["from"], body["window"], body["source"]) == ("KZT/USD", "0.002", "previous", "nbk")
    assert body["to"] == "0.001960784313725490196078431373"  # 28 significant digits, a string
    assert body["change_pct"] == pytest.approx(-1.9607843137)
    assert (body["at"], body["from_at"], body["sent_at"]) == (AT.isoformat(), FROM_AT.isoformat(), NOW.isoformat())
    assert body["news"] == [{"title": title, "link": "https://n.example/1", "published": AT.isoformat(),
                             "country": "KZ"}]


@pytest.mark.parametrize("moment, shown", [
    (datetime(2026, 11, 21, tzinfo=timezone.utc), "2026-11-21"),
    (datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc), "2026-11-21 09:30 UTC"),
])
def test_publisher_dates_stay_dates(moment, shown):
    assert render_fx.when(moment) == shown
