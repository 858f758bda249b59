"""`tulpar fetch URL [URL...]`: print each feed's normalised articles as JSON lines.

stdout: one JSON object per article, keys exactly source, id, title, summary,
link, published (ISO 8601 with offset, or null), always UTF-8.
stderr: one `URL: what went wrong` line per failed source. Exit 1 if any failed.
Release checks read this output, so it is a contract: change it deliberately.

The operator's own curl: the URLs given are fetched even when loopback,
private or local files (where a redirect goes is still checked).
"""
from __future__ import annotations

import json
import logging
import sys

from services.news.article import Article
from services.settings import Settings
from services.news.feed import parse
from services.net.fetch import SourceError, fetch

KEYS = ("source", "id", "title", "summary", "link", "published")


def register(sub) -> None:
    p = sub.add_parser("fetch", help="fetch feeds and print their articles as JSON lines")
    p.add_argument("urls", nargs="+", metavar="URL", help="http(s) or file:// URL, or a local path")
    p.set_defaults(handler=run)


def article_line(article: Article, source: str) -> str:
    data = article.to_json()
    data["source"] = source
    return json.dumps({key: data[key] for key in KEYS}, ensure_ascii=False)


def run(args) -> int:
    # stderr is part of the contract (failed sources only): the domain's own
    # log lines (a feed that parsed with warnings ...) must not reach the
    # process's stderr handler. Failures are printed below, one line each.
    # Restored afterwards: main() also runs in-process (tests, embedding).
    # (The NullHandler keeps logging's last-resort stderr handler out too.)
    domain_log, quiet = logging.getLogger("services"), logging.NullHandler()
    propagate, domain_log.propagate = domain_log.propagate, False
    domain_log.addHandler(quiet)
    try:
        return _fetch_all(args.urls)
    finally:
        domain_log.removeHandler(quiet)
        domain_log.propagate = propagate


def _fetch_all(urls: list[str]) -> int:
    settings = Settings()
    failed = False
    for url in urls:
        try:
            result = fetch(url, None, settings, operator=True)
            articles = parse(result.body or b"", url, result.content_type, base_url=result.url or url)
        except SourceError as exc:
            failed = True
            # One line per failure, even if the URL or message holds a newline.
            _write(sys.stderr, " ".join(str(exc).splitlines()))
            continue
        _write(sys.stdout, "\n".join(article_line(a, url) for a in articles) if articles else None)
    return 1 if failed else 0


def _write(stream, text: str | None) -> None:
    # Bytes straight to the buffer: a C or ASCII locale must not turn Cyrillic
    # titles into UnicodeEncodeError.
    if text is not None:
        stream.buffer.write(text.encode("utf-8", "backslashreplace") + b"\n")
    stream.flush()
