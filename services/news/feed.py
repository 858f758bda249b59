"""RSS and Atom feeds: feedparser entries normalised to `Article`s.

`parse` never raises anything but `SourceError`, whatever bytes it is given.
"""
from __future__ import annotations

import hashlib
import io
import logging
import re
import urllib.parse
from datetime import datetime, timezone

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from services.news.article import Article
from services.settings import Settings
from services.net.fetch import FetchState, SourceError, fetch
from services.news.text import clean_text, html_to_text

log = logging.getLogger(__name__)

LINK_SCHEMES = ("http", "https")
_LANG = re.compile(r"[A-Za-z]{2,3}")
_HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S)
_EXPAT_PLACE = re.compile(r"^<unknown>:\d+:\d+: ")


def poll(url: str, source_name: str, state: FetchState | None = None,
         settings: Settings | None = None) -> tuple[list[Article], FetchState]:
    """Fetch `url` and parse it; an unchanged feed (304) gives no articles."""
    result = fetch(url, state, settings)
    if result.not_modified or result.body is None:
        return [], result.state
    return parse(result.body, source_name, result.content_type, base_url=result.url or url), result.state


def parse(body: bytes, source: str, content_type: str | None = None,
          base_url: str | None = None) -> list[Article]:
    """Articles in a feed document. `base_url` (default: `source`) resolves relative links."""
    if not body or not body.strip():
        raise SourceError(source, "empty response, not a feed")
    headers = {"content-type": content_type} if content_type else {}
    try:
        # A BytesIO, never the bytes themselves: feedparser treats a bytes
        # argument that happens to name a file as a path and reads that file.
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
        _check_is_feed(parsed, body, source)
        return _articles(parsed, source, base_url or source)
    except SourceError:
        raise
    except Exception as exc:  # feedparser and odd documents: the contract is SourceError only
        log.exception("feed %s could not be read", source)
        raise SourceError(source, f"could not read feed: {type(exc).__name__}: {exc}") from None


def _check_is_feed(parsed, body: bytes, source: str) -> None:
    problem = parsed.get("bozo_exception")
    if parsed.entries:
        if parsed.bozo:
            # Tolerated: most real feeds have some flaw. INFO, not WARNING, so
            # `tulpar fetch` keeps stderr for failed sources only.
            log.info("feed %s is not well-formed, read anyway: %s", source, problem)
        return
    if not parsed.get("version"):
        raise SourceError(source, "not an RSS or Atom feed" + _why_not_a_feed(body, problem))
    if parsed.bozo:
        # A recognised feed with no entries is an empty feed, flawed or not:
        # failing it would raise an alarm each night a feed empties out.
        log.info("feed %s has no entries and is not well-formed: %s", source, problem)


def _why_not_a_feed(body: bytes, problem: BaseException | None) -> str:
    if _HTML_START.match(body[:512]):
        return " (got an HTML page)"
    # Complaints about the media type or encoding say nothing about why the
    # document is no feed; an XML syntax error does.
    if problem is None or isinstance(problem, ThingsNobodyCaresAboutButMe):
        return ""
    return f" ({_describe(problem)})"


def _describe(problem: BaseException) -> str:
    text = clean_text(str(problem)) or type(problem).__name__
    # expat says "<unknown>:2:0: unclosed token"; its line numbers count a
    # prolog feedparser may have added, so they would mislead.
    return "XML error: " + _EXPAT_PLACE.sub("", text)[:200]


def _articles(parsed, source: str, base_url: str) -> list[Article]:
    feed_lang = _language(parsed.feed.get("language"))
    articles: dict[str, Article] = {}
    for entry in parsed.entries:
        article = _article(entry, source, base_url, feed_lang)
        if article is None:
            log.debug("feed %s: skipped an entry with no id, link, title or text", source)
        elif article.id in articles:
            # Feeds do repeat an item; one id is one story, so the first copy
            # (the one higher in the feed) stands.
            log.info("feed %s: entry id %r appears twice, kept the first", source, article.id)
        else:
            articles[article.id] = article
    return list(articles.values())


def _article(entry, source: str, base_url: str, feed_lang: str | None) -> Article | None:
    title = _text(entry.get("title_detail")) or clean_text(entry.get("title") or "")
    summary = _text(entry.get("summary_detail"))
    if not summary and entry.get("content"):
        summary = _text(entry.content[0])
    link = _absolute_link(entry, base_url)
    entry_id = _entry_id(entry, link, title, summary)
    if not entry_id:
        return None
    return Article(
        source=source, id=entry_id, title=title, summary=summary, link=link,
        published=_published(entry), lang=_entry_language(entry) or feed_lang,
    )


def _text(detail) -> str:
    """Plain text of a feedparser text construct (title, summary, content)."""
    if not detail:
        return ""
    value = detail.get("value") or ""
    if "html" in (detail.get("type") or ""):
        return html_to_text(value)
    return clean_text(value)


def _entry_id(entry, link: str, title: str, summary: str) -> str:
    raw = clean_text(entry.get("id") or "")
    if raw:
        return raw
    if link:
        return link
    # No guid and no link: the title names the story; text-only items
    # (RSS allows an item with just a description) fall back to the text.
    basis = title or summary
    return "sha1:" + hashlib.sha1(basis.encode("utf-8")).hexdigest() if basis else ""


def _absolute_link(entry, base_url: str) -> str:
    guid = clean_text(entry.get("id") or "")
    candidates = [entry.get("link")] + [link.get("href") for link in entry.get("links") or []]
    for candidate in candidates:
        candidate = clean_text(candidate or "")
        if not candidate:
            continue
        try:
            # With no <link>, feedparser copies an RSS guid into `link` (guids
            # are permalinks by default); but "item-42" is a name, not a path.
            if entry.get("guidislink") and candidate == guid and not urllib.parse.urlsplit(candidate).scheme:
                continue
            absolute = urllib.parse.urljoin(base_url, candidate)
            scheme = urllib.parse.urlsplit(absolute).scheme.lower()
        except ValueError:  # e.g. a malformed IPv6 host
            continue
        # Links end up in emails and webhooks: only web links, never javascript:.
        if scheme in LINK_SCHEMES:
            return absolute
    return ""


def _published(entry) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        # dict.get: FeedParserDict answers a missing "updated_parsed" with
        # "published_parsed" and a DeprecationWarning.
        parsed = dict.get(entry, key)
        if not parsed:
            continue
        # feedparser has already converted to UTC; struct_time may say second
        # 60 (leap second), which datetime refuses.
        try:
            return datetime(*parsed[:5], min(parsed[5], 59), tzinfo=timezone.utc)
        except (ValueError, TypeError, OverflowError):
            continue
    return None


def _entry_language(entry) -> str | None:
    for value in (entry.get("language"),
                  (entry.get("summary_detail") or {}).get("language"),
                  (entry.get("title_detail") or {}).get("language")):
        lang = _language(value)
        if lang:
            return lang
    return None


def _language(value) -> str | None:
    """Primary subtag, lowercased: "ru-RU" -> "ru"; None if it is no language code."""
    if not isinstance(value, str):
        return None
    primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0]
    return primary.lower() if _LANG.fullmatch(primary) else None
