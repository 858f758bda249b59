"""Render one FX alert: the email (with its chart inline) and the webhook body.

Pure like services/render.py: the alert, the chart bytes and the news links
come in, plain JSON goes out; templates live in templates/email/fx/ and
templates/webhook/fx.json. Rates are shown two ways: rounded for people
(`display`, 5 significant digits) and exact for machines (strings in the
webhook, so 0.001929756850636819760710150521 is not cut to a float).
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from services import render
from services.countries import name_of
from services.fx.pairs import display, report
from services.fx.rules import Alert
from services.fx.ticker import format_pct

CHART_CID = "fx-chart@tulpar"


def exact(rate: Decimal) -> str:
    """28 significant digits at most, never an exponent: '518.2', '0.00192975...'."""
    return format(report(rate), "f")


def when(moment: datetime) -> str:
    """A publisher's date stays a date ('2026-11-21'); a time shows in UTC."""
    moment = moment.astimezone(timezone.utc)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def window_text(window: str) -> str:
    return "against the previous observation" if window == "previous" else f"over {window}"


def news_links(news: Sequence[dict]) -> list[dict]:
    """[{title, link, published, country}] with `href` only for http(s) links:
    feed links are untrusted and must not become javascript: hrefs."""
    out = []
    for item in news:
        link = str(item.get("link") or "")
        published = item.get("published")
        out.append({
            "title": str(item.get("title") or link or "(untitled)"),
            "link": link,
            "href": render.safe_href(link) if link else None,
            "published": when(published) if isinstance(published, datetime) else None,
            "published_iso": published.isoformat() if isinstance(published, datetime) else None,
            "country": item.get("country"),
            "country_name": name_of(item.get("country")),
        })
    return out


def context(alert: Alert, subscription: str, news: Sequence[dict], now: datetime,
            has_chart: bool = False) -> dict:
    links = news_links(news)
    return {
        "subscription": subscription,
        "pair": alert.pair,
        "base": alert.pair.split("/")[0],
        "quote": alert.pair.split("/")[1],
        "from_rate": display(alert.from_rate),
        "to_rate": display(alert.to_rate),
        "from_exact": exact(alert.from_rate),
        "to_exact": exact(alert.to_rate),
        "change": format_pct(alert.change_pct),
        "change_pct": float(alert.change_pct),
        "window": alert.window,
        "window_text": window_text(alert.window),
        "condition": alert.condition,
        "source": alert.source or "unknown",
        "published": when(alert.at),
        "published_iso": alert.at.isoformat(),
        "from_published": when(alert.from_at),
        "from_published_iso": alert.from_at.isoformat(),
        "news": links,
        "countries": [name_of(c) for c in dict.fromkeys(n["country"] for n in links if n["country"])],
        "chart_cid": CHART_CID if has_chart else None,
        "sent_at": now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "sent_at_iso": now.isoformat(),
    }


def fx_email(alert: Alert, subscription: str, *, news: Sequence[dict] = (), chart_png: bytes | None = None,
             now: datetime, templates_dir: Path | None = None) -> dict:
    """{"subject", "text", "html"[, "inline_images"]}: the chart rides along as
    an inline image that the HTML shows through `cid:`."""
    images = None
    if chart_png:
        images = [{"cid": CHART_CID, "content_type": "image/png",
                   "data_b64": base64.b64encode(chart_png).decode("ascii")}]
    ctx = context(alert, subscription, news, now, has_chart=bool(chart_png))
    return render.email("fx", ctx, inline_images=images, templates_dir=templates_dir)


def fx_webhook(alert: Alert, subscription: str, *, news: Sequence[dict] = (), now: datetime,
               templates_dir: Path | None = None) -> dict:
    """The JSON body posted for one FX alert (no chart: receivers have the numbers)."""
    return render.webhook("fx", context(alert, subscription, news, now), templates_dir=templates_dir)
