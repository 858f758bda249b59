"""Rendering: our templates (email parts, webhook JSON)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from services import render
from services.news.article import Article

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)


def article(title="Tenge steady", summary="The KZT held at 500.", link="https://news.example/a/1",
            published=datetime(2026, 3, 1, 9, 15, tzinfo=timezone.utc)) -> Article:
    return Article(source="tengrinews", id="a-1", title=title, summary=summary, link=link,
                   published=published, lang="en")


@pytest.mark.parametrize("title, summary, in_html, not_in_html", [
    ('<script>alert("x")</script>', "a & b", ["&lt;script&gt;", "a &amp; b"], ["<script>"]),
    ('He said "hi" & left', "1 < 2 > 0", ["&#34;hi&#34; &amp; left", "1 &lt; 2 &gt; 0"], ['"hi"']),
    ("Курс тенге укрепился", "Нацбанк: «стабильно»", ["Курс тенге укрепился", "«стабильно»"], []),
])
def test_email_escapes_html_and_keeps_text_verbatim(title, summary, in_html, not_in_html):
    message = render.alert_email(article(title=title, summary=summary), "KZ money", [], now=NOW)
    for fragment in in_html:
        assert fragment in message["html"]
    for fragment in not_in_html:
        assert fragment not in message["html"]
    assert title in message["text"] and summary in message["text"]
    assert message["subject"] == f"[KZ money] {title}"


@pytest.mark.parametrize("field, expected", [
    ("title", "Link"), ("source", "tengrinews"), ("published", "2026-03-01 09:15 UTC"),
    ("subscription", "KZ money"), ("summary", "The KZT held at 500."),
    ("link", "https://news.example/a/1"),
])
def test_email_shows_every_required_field_in_both_parts(field, expected):
    message = render.alert_email(article(title="Link"), "KZ money", [], now=NOW)
    assert expected in message["text"]
    assert expected in message["html"]


@pytest.mark.parametrize("title, evidence, expected", [
    ("Tenge falls", [{"field": "title", "start": 0, "end": 5, "term": "tenge"}],
     "<mark>Tenge</mark> falls"),
    ("A<B & tenge", [{"field": "title", "start": 6, "end": 11, "term": "tenge"}],
     "A&lt;B &amp; <mark>tenge</mark>"),
    ("<b>tenge</b>", [{"field": "title", "start": 3, "end": 8, "term": "tenge"}],
     "&lt;b&gt;<mark>tenge</mark>&lt;/b&gt;"),
    ('"KZT" ок', [{"field": "title", "start": 1, "end": 4, "term": "kzt"}],
     "&#34;<mark>KZT</mark>&#34; ок"),
    ("Курс тенге", [{"field": "title", "start": 5, "end": 10, "term": "тенге"}],
     "Курс <mark>тенге</mark>"),
    # Overlapping spans merge; a span past the end is clamped to the text.
    ("oil price", [{"field": "title", "start": 0, "end": 3, "term": "oil"},
                   {"field": "title", "start": 2, "end": 9, "term": "l price"}],
     "<mark>oil price</mark>"),
    ("oil", [{"field": "title", "start": 1, "end": 99, "term": "il"}], "o<mark>il</mark>"),
    # Evidence for another field does not touch the title.
    ("oil", [{"field": "summary", "start": 0, "end": 3, "term": "oil"}], ">oil<"),
])
def test_html_highlights_evidence_spans(title, evidence, expected):
    message = render.alert_email(article(title=title, link=""), "s", evidence, now=NOW)
    assert expected in message["html"]
    assert "<mark>" not in message["text"]


@pytest.mark.parametrize("text, spans, expected", [
    ("a&b", [(0, 3)], "<mark>a&amp;b</mark>"),
    ("abc", [(2, 1), (5, 9)], "abc"),
    ("abcdef", [(4, 6), (0, 1)], "<mark>a</mark>bcd<mark>ef</mark>"),
    ("", [(0, 1)], ""),
])
def test_highlight_table(text, spans, expected):
    assert render.highlight(text, spans) == expected


@pytest.mark.parametrize("link, href_present", [
    ("https://news.example/a?x=1&y=2", True),
    ("javascript:alert(1)", False),
    ("data:text/html,<script>", False),
])
def test_only_http_links_become_hrefs(link, href_present):
    html = render.alert_email(article(link=link), "s", [], now=NOW)["html"]
    assert ("<a href=" in html) is href_present
    assert "javascript:alert(1)\"" not in html


@pytest.mark.parametrize("title", [
    'He said "stop" \\ then }',
    "line one\nline two\ttab",
    "</script><!-- {{ '}} {% %}",
    "Тенге \u2028 separator \u0000 nul",
    "emoji 🛢️ and \"quotes\"",
])
def test_webhook_body_is_valid_json_for_nasty_titles(title):
    evidence = [{"field": "title", "start": 0, "end": 2, "term": title[:2]}]
    body = render.alert_webhook(article(title=title), "KZ money", evidence, now=NOW)
    assert body["article"]["title"] == title
    assert body["subscription"] == "KZ money"
    assert body["evidence"] == evidence
    assert body["sent_at"] == NOW.isoformat()
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize("published, expected_text, expected_json", [
    (None, "unknown", None),
    (datetime(2026, 3, 1, 9, 15), "2026-03-01 09:15 UTC", "2026-03-01T09:15:00"),
    (datetime.fromisoformat("2026-03-01T14:15:00+05:00"), "2026-03-01 09:15 UTC",
     "2026-03-01T14:15:00+05:00"),
])
def test_published_time_formats(published, expected_text, expected_json):
    a = article(published=published)
    assert f"Published:    {expected_text}" in render.alert_email(a, "s", [], now=NOW)["text"]
    assert render.alert_webhook(a, "s", [], now=NOW)["article"]["published"] == expected_json


@pytest.mark.parametrize("subscription, title, subject", [
    ("KZ", "two\nlines", "[KZ] two lines"),
    ("Нефть", "CPC  pipeline\r\nhalted", "[Нефть] CPC pipeline halted"),
])
def test_subject_is_one_line(subscription, title, subject):
    assert render.alert_email(article(title=title), subscription, [], now=NOW)["subject"] == subject


def test_generic_email_helper_renders_another_template_dir(tmp_path):
    folder = tmp_path / "email" / "fx"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("{{ pair }} moved\n")
    (folder / "body.txt").write_text("{{ pair }} is {{ rate }}")
    (folder / "body.html").write_text("<p>{{ pair }} <img src=\"cid:chart\"></p>")
    image = {"cid": "chart", "content_type": "image/png", "data_b64": "iVBORw0KGgo="}
    message = render.email("fx", {"pair": "USD<KZT", "rate": 512}, inline_images=[image],
                           templates_dir=tmp_path)
    assert message == {
        "subject": "USD<KZT moved",
        "text": "USD<KZT is 512",
        "html": '<p>USD&lt;KZT <img src="cid:chart"></p>',
        "inline_images": [image],
    }


@pytest.mark.parametrize("files, match", [
    ({"subject.txt": "{{ missing }}", "body.txt": "", "body.html": ""}, "missing"),
    ({"subject.txt": "{% if %}", "body.txt": "", "body.html": ""}, "subject.txt"),
    ({"subject.txt": "s", "body.txt": "b"}, "body.html"),
])
def test_email_template_problems_are_render_errors(tmp_path, files, match):
    folder = tmp_path / "email" / "broken"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    with pytest.raises(render.RenderError, match=match):
        render.email("broken", {}, templates_dir=tmp_path)


def test_webhook_template_that_is_not_json_is_a_render_error(tmp_path):
    (tmp_path / "webhook").mkdir()
    (tmp_path / "webhook" / "bad.json").write_text('{"title": "{{ title }}"}')
    with pytest.raises(render.RenderError, match="invalid JSON"):
        render.webhook("bad", {"title": 'say "hi"'}, templates_dir=tmp_path)


@pytest.mark.parametrize("terms, expected", [
    (["тенге", "kzt", "тенге"], "Matched:      тенге, kzt"),
    (["oil"], "Matched:      oil"),
])
def test_matched_terms_listed_once_in_evidence_order(terms, expected):
    evidence = [{"field": "summary", "start": 0, "end": 1, "term": t} for t in terms]
    message = render.alert_email(article(), "s", evidence, now=NOW)
    assert expected in message["text"]
    assert render.alert_webhook(article(), "s", evidence, now=NOW)["matched_terms"] == \
        list(dict.fromkeys(terms))
