"""Bytes that are no feed fail with a SourceError that names the source; nothing else escapes."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.news.feed import parse
from services.net.fetch import SourceError

FEEDS = Path(__file__).resolve().parents[2] / "data" / "feeds"
SOURCE = "http://feeds.test/broken.xml"

NOT_FEEDS = [
    ("empty file", (FEEDS / "empty.xml").read_bytes(), "empty response, not a feed"),
    ("only whitespace", b" \n\t\r\n", "empty response, not a feed"),
    ("web page", (FEEDS / "not_a_feed.html").read_bytes(), "not an RSS or Atom feed (got an HTML page)"),
    ("web page behind a BOM and comment", b"\xef\xbb\xbf<!-- cms -->\n<HTML lang=kk><p>x",
     "not an RSS or Atom feed (got an HTML page)"),
    ("json", b'{"items": [{"title": "x"}]}',
     "not an RSS or Atom feed (XML error: not well-formed (invalid token))"),
    ("xml of another kind", b"<?xml version='1.0'?><invoice><total>5</total></invoice>",
     "not an RSS or Atom feed"),
    ("binary noise", bytes(range(256)) * 4,
     "not an RSS or Atom feed (XML error: not well-formed (invalid token))"),
    ("cut off before the root closes", b"<?xml version='1.0'?>\n<rss",
     "not an RSS or Atom feed (XML error: unclosed token)"),
]


@pytest.mark.parametrize("body, message", [c[1:] for c in NOT_FEEDS], ids=[c[0] for c in NOT_FEEDS])
def test_not_a_feed_is_a_source_error(body, message):
    with pytest.raises(SourceError) as caught:
        parse(body, SOURCE)
    assert str(caught.value) == f"{SOURCE}: {message}"
    assert not caught.value.transient


# Recognised feeds with nothing in them are quiet, not failures, even when
# flawed: a feed that empties overnight must not page an operator.
EMPTY_FEEDS = [
    ("valid empty channel", (FEEDS / "empty_channel.xml").read_bytes()),
    ("html entity in channel title", b"<rss version='2.0'><channel><title>a&nbsp;b</title></channel></rss>"),
    ("truncated after the channel title", b"<rss version='2.0'><channel><title>x</title>"),
    ("atom with no entries", b"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title></feed>"),
]


@pytest.mark.parametrize("body", [c[1] for c in EMPTY_FEEDS], ids=[c[0] for c in EMPTY_FEEDS])
def test_recognised_feed_without_entries_is_empty(body):
    assert parse(body, SOURCE) == []


def test_body_naming_a_local_file_is_not_read_as_that_file(tmp_path):
    # feedparser opens a bytes argument as a path if such a file exists.
    secret = tmp_path / "feed.xml"
    secret.write_bytes(b"<rss version='2.0'><channel><item><guid>leak</guid></item></channel></rss>")
    with pytest.raises(SourceError):
        parse(str(secret).encode(), SOURCE)


def test_entity_expansion_bomb_is_refused_or_harmless():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY %c "%s">' % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(8))
            + b']><rss version="2.0"><channel><item><title>&i;</title><guid>g</guid></item></channel></rss>')
    try:
        articles = parse(bomb, SOURCE)
    except SourceError:
        return
    assert all(len(a.title) < 1_000_000 for a in articles)


FEEDISH = st.sampled_from([
    b"<rss version='2.0'>", b"<channel>", b"<item>", b"</item>", b"<title>", b"</title>",
    b"<feed xmlns='http://www.w3.org/2005/Atom'>", b"<entry>", b"</entry>", b"<link href='",
    b"'/>", b"<![CDATA[", b"]]>", b"&amp;", b"&nbsp;", b"&#0;", b"&#xD800;", b"<guid>",
    b"<?xml version='1.0' encoding='utf-16'?>", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00",
    b"<pubDate>Mon, 99 Foo 2026 25:61:61 +9999</pubDate>", b"<description>&lt;p",
    "Ж".encode(), "Ж".encode("cp1251"), b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), st.lists(FEEDISH, max_size=30).map(b"".join)))
def test_arbitrary_bytes_give_articles_or_source_error(body):
    try:
        articles = parse(body, SOURCE)
    except SourceError as exc:
        assert str(exc).startswith(SOURCE + ": ")
        return
    for article in articles:
        assert article.id and article.source == SOURCE
        for text in (article.id, article.title, article.summary, article.link):
            text.encode("utf-8")  # printable by `tulpar fetch`: no lone surrogates
        assert article.published is None or article.published.tzinfo is not None
