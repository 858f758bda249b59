"""Turn pipeline data into the plain-JSON message a channel sends.

Rendering happens before queueing and never does I/O beyond reading templates:
the result is stored on the Delivery row and a channel only transmits it.

Adding a message kind: create templates/email/<name>/{subject.txt,body.txt,body.html}
(and/or templates/webhook/<name>.json) and a function here that builds the
context and calls `email(name, context)` / `webhook(name, context)`, like
`alert_email` does.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.exceptions import TemplateError
from markupsafe import Markup, escape

from services.news.article import Article
from services.errors import TulparError
from services.settings import Settings

class RenderError(TulparError):
    """A template failed to render (bad template, missing variable, refused access)."""


@lru_cache(maxsize=8)
def environment(templates_dir: Path) -> Environment:
    """The environment for our own templates: .html autoescaped, undefined is an error."""
    return Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def _render(name: str, context: dict, templates_dir: Path | None) -> str:
    try:
        env = environment(Path(templates_dir or Settings().templates_dir))
        return env.get_template(name).render(context)
    except TemplateError as exc:
        raise RenderError(f"template {name}: {exc}") from exc


def email(template_dir_name: str, context: dict, *, inline_images: list[dict] | None = None,
          templates_dir: Path | None = None) -> dict:
    """Render templates/email/<name>/ into {"subject", "text", "html"[, "inline_images"]}."""
    base = f"email/{template_dir_name}"
    subject = _render(f"{base}/subject.txt", context, templates_dir)
    message = {
        # A header is one line: collapse whatever newlines the template or a
        # feed title brought in.
        "subject": " ".join(subject.split()),
        "text": _render(f"{base}/body.txt", context, templates_dir),
        "html": _render(f"{base}/body.html", context, templates_dir),
    }
    if inline_images:
        message["inline_images"] = [dict(image) for image in inline_images]
    return message


def webhook(template_name: str, context: dict, *, templates_dir: Path | None = None) -> dict:
    """Render templates/webhook/<name>.json and parse it: the JSON body as a dict."""
    text = _render(f"webhook/{template_name}.json", context, templates_dir)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RenderError(f"template webhook/{template_name}.json gave invalid JSON: {exc}") from exc


def highlight(text: str, spans: list[tuple[int, int]]) -> Markup:
    """`text` HTML-escaped, with each [start, end) span wrapped in <mark>.

    Offsets index the Python str (code points), as the matcher reports them.
    Spans are clamped to the text and overlapping ones merged: a stale or sloppy
    offset should cost a highlight, not the whole alert.
    """
    merged: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, pos = [], 0
    for start, end in merged:
        out.append(escape(text[pos:start]))
        out.append(Markup("<mark>%s</mark>") % text[start:end])
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def _spans(evidence: list[dict], field: str) -> list[tuple[int, int]]:
    return [(int(e["start"]), int(e["end"])) for e in evidence if e.get("field") == field]


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # feeds without a zone: we store them as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def safe_href(link: str) -> str | None:
    # Feed links are untrusted: only http(s) may become a clickable href
    # (no javascript: or data: links in an HTML mail).
    return link if urlsplit(link).scheme.lower() in ("http", "https") else None


def _alert_context(article: Article, subscription: str, evidence: list[dict],
                   now: datetime) -> dict:
    return {
        "article": article,
        "subscription": subscription,
        "evidence": [dict(e) for e in evidence],
        # In evidence order (the matcher sorts it title first, by position).
        "terms": list(dict.fromkeys(str(e["term"]) for e in evidence if e.get("term"))),
        "published": _when(article.published),
        "published_iso": article.published.isoformat() if article.published else None,
        "sent_at": _when(now),
        "sent_at_iso": now.isoformat(),
        "link_href": safe_href(article.link),
        "title_html": highlight(article.title, _spans(evidence, "title")),
        "summary_html": highlight(article.summary, _spans(evidence, "summary")),
    }


def alert_email(article: Article, subscription: str, evidence: list[dict], *,
                now: datetime, templates_dir: Path | None = None) -> dict:
    """The email for one matched article: {"subject", "text", "html"}."""
    context = _alert_context(article, subscription, evidence, now)
    return email("alert", context, templates_dir=templates_dir)


def alert_webhook(article: Article, subscription: str, evidence: list[dict], *,
                  now: datetime, templates_dir: Path | None = None) -> dict:
    """The JSON body posted to a webhook for one matched article."""
    context = _alert_context(article, subscription, evidence, now)
    return webhook("generic", context, templates_dir=templates_dir)
