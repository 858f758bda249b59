"""Feed entries become Articles: ids, plain text, absolute links, UTC dates, language."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from services.news.feed import parse

FEEDS = Path(__file__).resolve().parents[2] / "data" / "feeds"
SOURCE = "http://feeds.test/region/news.xml"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def sha1_id(text: str) -> str:
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def parse_fixture(name: str, content_type: str | None = None):
    return parse((FEEDS / name).read_bytes(), SOURCE, content_type)


# (fixture, HTTP content type, entry index, fields expected on that Article)
ENTRY_CASES = [
    # RSS 2.0: CDATA HTML stripped, &nbsp;/&laquo; decoded, <script> text dropped,
    # guid whitespace trimmed, relative link made absolute against the feed URL,
    # +0500 date converted to UTC, language "ru-RU" reduced to "ru".
    ("rss20_cyrillic.xml", None, 0, {
        "id": "kz-econ-0001",
        "title": "Тенге укрепился к доллару",
        "summary": "Курс тенге вырос на 1,5%. Аналитики ждут «стабильности».",
        "link": "http://feeds.test/economy/tenge-1",
        "published": utc(2026, 11, 24, 10, 30),
        "lang": "ru",
    }),
    # Escaped HTML in a description is HTML too; no guid means the link is the id.
    ("rss20_cyrillic.xml", None, 1, {
        "id": "https://news.example.kz/politics/budget",
        "title": "Mazhilis & Senate agree on the budget",
        "summary": "Deputies in Astana passed the 2027 budget in second reading.",
        "published": None,
    }),
    # No guid, no link: the id hashes the whitespace-collapsed title; a date
    # feedparser cannot read is no date rather than an error.
    ("rss20_cyrillic.xml", None, 2, {
        "id": sha1_id("Пресс-релиз без ссылки"),
        "title": "Пресс-релиз без ссылки",
        "link": "",
        "published": None,
    }),
    # Atom 1.0: xml:base resolves the link, type="html" title is stripped,
    # type="text" summary keeps its angle brackets as text.
    ("atom10_base.xml", None, 0, {
        "id": "urn:tulpar:test:atom10:1",
        "title": "CPC terminal resumes loadings",
        "summary": "Tankers are loading again at the Novorossiysk moorings <after repairs>.",
        "link": "https://atom.example.org/blog/posts/cpc-terminal",
        "published": utc(2026, 11, 20, 5, 0),  # only <updated>, at +03:00
        "lang": "kk",
    }),
    # No summary: text comes from xhtml content; <published> wins over <updated>;
    # the entry's own xml:lang wins over the feed's.
    ("atom10_base.xml", None, 1, {
        "summary": "First paragraph. Second line.",
        "published": utc(2026, 11, 19, 12, 0),
        "lang": "en",
    }),
    ("atom03.xml", None, 0, {
        "id": "tag:old.example.com,2026:7",
        "link": "http://old.example.com/entries/7",
        "published": utc(2026, 10, 1, 9, 0),
        "lang": None,
    }),
    # RSS 1.0 (RDF) with Dublin Core date and language.
    ("rss10_rdf.xml", None, 0, {
        "id": "http://rdf.example.uz/a/1",
        "published": utc(2026, 11, 23, 4, 15),
        "lang": "uz",
    }),
    # RSS 0.91 in ISO-8859-1 with a numeric character reference.
    ("rss091.xml", None, 0, {"title": "Café prices in Bishkek", "lang": "en"}),
    # Encoding declared in the XML prolog only.
    ("rss20_windows1251.xml", None, 0, {
        "title": "Жогорку Кенеш утвердил повестку",
        "published": utc(2026, 11, 23, 6, 0),
    }),
    # Encoding given only by the HTTP header; a guid that is not a URL is not
    # turned into a link.
    ("rss20_koi8r_noprolog.xml", "application/rss+xml; charset=koi8-r", 0, {
        "id": "tj-bridge-2026",
        "title": "Душанбе: новый мост открыт",
        "link": "",
    }),
    # Not well-formed (HTML entities, bare "&") but it has entries: read it.
    ("lenient_entities.xml", None, 0, {
        "title": "Som and tenge — a weekly review",
        "summary": "Unescaped ampersand: R&D spending rose.",
        "link": "http://lenient.example.com/review?week=47&page=1",
    }),
]


@pytest.mark.parametrize("fixture, content_type, index, expected", ENTRY_CASES,
                         ids=[f"{c[0]}[{c[2]}]" for c in ENTRY_CASES])
def test_entry_is_normalised(fixture, content_type, index, expected):
    article = parse_fixture(fixture, content_type)[index]
    actual = {field: getattr(article, field) for field in expected}
    assert actual == expected
    assert article.source == SOURCE


@pytest.mark.parametrize("fixture, count", [
    ("rss20_cyrillic.xml", 3), ("atom10_base.xml", 2), ("atom03.xml", 1),
    ("rss10_rdf.xml", 1), ("rss091.xml", 1), ("empty_channel.xml", 0),
])
def test_every_entry_becomes_one_article(fixture, count):
    assert len(parse_fixture(fixture)) == count


# Small documents written inline: one behaviour each.
def rss_item(inner: str) -> bytes:
    return f'<rss version="2.0"><channel><title>t</title><item>{inner}</item></channel></rss>'.encode()


INLINE_CASES = [
    ("javascript link dropped", rss_item("<title>x</title><link>javascript:alert(1)</link>"),
     {"link": ""}),
    ("guid beats link", rss_item("<guid isPermaLink='false'>g-1</guid><link>http://a/1</link>"),
     {"id": "g-1", "link": "http://a/1"}),
    ("text-only item hashes its text", rss_item("<description>Only words here</description>"),
     {"id": sha1_id("Only words here"), "title": ""}),
    ("entities in plain title decoded once", rss_item("<title>5 &amp;lt; 6 &#x26; AT&amp;T</title>"),
     {"title": "5 < 6 & AT&T"}),
    ("cdata in title", rss_item("<title><![CDATA[Fish & <b>chips</b>]]></title>"),
     {"title": "Fish & chips"}),
    ("block tags separate words", rss_item("<description>one&lt;br&gt;two&lt;li&gt;three</description>"),
     {"summary": "one two three"}),
    ("style text dropped", rss_item("<description>&lt;style&gt;p{color:red}&lt;/style&gt;kept</description>"),
     {"summary": "kept"}),
    ("control characters removed", rss_item("<title>bell&#x7;tab&#9;end</title>"),
     {"title": "belltab end"}),
    ("content:encoded when no description",
     b'<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><item>'
     b"<guid>c</guid><content:encoded><![CDATA[<div>Full <a href='/x'>story</a></div>]]></content:encoded>"
     b"</item></channel></rss>",
     {"summary": "Full story"}),
    ("atom entity in text title", b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>e</id>'
     b'<title type="text">Rates &amp; &lt;quotes&gt;</title></entry></feed>',
     {"title": "Rates & <quotes>"}),
    ("updated used when no published",
     b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>e</id><updated>2026-03-01T00:00:00-06:00</updated></entry></feed>',
     {"published": utc(2026, 3, 1, 6, 0)}),
    ("language code that is no language ignored",
     b'<rss version="2.0"><channel><language>x-klingon-99</language><item><guid>a</guid></item></channel></rss>',
     {"lang": None}),
    ("underscore language tag", b'<rss version="2.0"><channel><language>KY_kg</language><item><guid>a</guid></item></channel></rss>',
     {"lang": "ky"}),
]


@pytest.mark.parametrize("body, expected", [c[1:] for c in INLINE_CASES], ids=[c[0] for c in INLINE_CASES])
def test_inline_entry(body, expected):
    [article] = parse(body, SOURCE)
    assert {field: getattr(article, field) for field in expected} == expected


def test_repeated_id_gives_one_article_the_first():
    body = (b'<rss version="2.0"><channel><title>t</title>'
            b"<item><guid>same</guid><title>first copy</title></item>"
            b"<item><guid>other</guid><title>in between</title></item>"
            b"<item><guid>same</guid><title>second copy</title></item></channel></rss>")
    assert [(a.id, a.title) for a in parse(body, SOURCE)] == [("same", "first copy"), ("other", "in between")]


def test_entry_with_nothing_to_say_is_skipped():
    body = rss_item("<category>economy</category>")
    assert parse(body, SOURCE) == []


def test_base_url_overrides_source_for_links():
    body = rss_item("<guid>a</guid><link>story/9</link>")
    [article] = parse(body, "my-source", base_url="https://moved.example.com/feeds/main.xml")
    assert (article.source, article.link) == ("my-source", "https://moved.example.com/feeds/story/9")
