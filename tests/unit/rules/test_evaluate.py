"""What a rule means on an article, and the evidence it gives (reference evaluator)."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.rules import Document, Evidence, Hit, evaluate, load_presets, parse

PRESETS = load_presets(Path(__file__).resolve().parents[2] / "data" / "presets")

TITLE = "Kazakhstan raises tariffs on Chinese imports"
SUMMARY = "The export duty on crude oil was disrupted at the CPC terminal; Über-fees, ёлка and йод."
RU_TITLE = "Казахстан повысил пошлины на импорт"
RU_SUMMARY = "Экспортная пошлина на нефть. Тарифы на электроэнергию не изменились."


def hits(query: str, title=TITLE, summary=SUMMARY, source="Reuters", lang=None):
    """Matched (term, field, text) triples, or None for no match."""
    doc = Document(title, summary, source, lang)
    evidence = evaluate(parse(query, PRESETS), doc)
    if evidence is None:
        return None
    texts = {"title": doc.title, "summary": doc.summary}
    return [(h.term, h.field, texts[h.field][h.start : h.end]) for h in evidence.hits]


@pytest.mark.parametrize(
    "query, expected",
    [
        # Terms match by stem, case and accents aside.
        ("tariff", [("tariff", "title", "tariffs")]),
        ("disruption", [("disruption", "summary", "disrupted")]),
        ("TARIFFS", [("TARIFFS", "title", "tariffs")]),
        ("uber", [("uber", "summary", "Über")]),
        ("елка", [("елка", "summary", "ёлка")]),
        ("ёлка", [("ёлка", "summary", "ёлка")]),
        ("иод", None),  # й is not и
        ("fee", [("fee", "summary", "fees")]),
        # Phrases: exact words in order, no stemming, punctuation between is fine.
        ('"export duty"', [("export duty", "summary", "export duty")]),
        ('"export duties"', None),
        ('"duty export"', None),
        ('"cpc terminal ёлка"', None),
        ('"terminal Über"', [("terminal Über", "summary", "terminal; Über")]),
        # Prefixes: normalised word starts with the prefix.
        ("impor*", [("impor*", "title", "imports")]),
        ("kazakh*", [("kazakh*", "title", "Kazakhstan")]),
        ("ub*", [("ub*", "summary", "Über")]),
        ("imports*", [("imports*", "title", "imports")]),
        ("importsx*", None),
        # Fields.
        ("title:tariff", [("tariff", "title", "tariffs")]),
        ("summary:tariff", None),
        ('title:(oil OR "chinese imports")', [("chinese imports", "title", "Chinese imports")]),
        ("source:reuters", []),
        ("source:kursiv", None),
        ("lang:en", []),
        ("lang:ru", None),
        # Boolean structure; NOT gives no evidence; OR keeps every matching branch.
        ("tariff oil", [("tariff", "title", "tariffs"), ("oil", "summary", "oil")]),
        ("tariff AND gas", None),
        ("gas OR oil OR crude", [("crude", "summary", "crude"), ("oil", "summary", "oil")]),
        ("tariff -gas", [("tariff", "title", "tariffs")]),
        ("tariff -oil", None),
        ("-gas", []),
        ("NOT (gas OR oil)", None),
        # NEAR: word distance in the same field, either order, no overlap.
        ("export NEAR/1 duty", [("export", "summary", "export"), ("duty", "summary", "duty")]),
        ("duty NEAR/1 export", [("export", "summary", "export"), ("duty", "summary", "duty")]),
        ("export NEAR/3 oil", None),
        ("export NEAR/4 oil", [("export", "summary", "export"), ("oil", "summary", "oil")]),
        ('"export duty" NEAR/3 oil', [("export duty", "summary", "export duty"), ("oil", "summary", "oil")]),
        ('"export duty" NEAR/2 oil', None),  # counted from the phrase's nearer end
        ("duty NEAR/5 duty", None),  # one word cannot be both sides
        ("tariff NEAR/5 oil", None),  # different fields
        ("title:tariff NEAR/5 oil", None),
        # Presets expand to their effective rule.
        ("topic:tariffs", [("tariff*", "title", "tariffs"), ("export duty", "summary", "export duty")]),
        ("country:KZ", [("kazakh*", "title", "Kazakhstan")]),
        ("topic:kz-oil", [("kazakh*", "title", "Kazakhstan"), ("oil", "summary", "oil")]),
    ],
)
def test_english_article(query, expected):
    assert hits(query) == expected


@pytest.mark.parametrize(
    "query, expected",
    [
        ("пошлина", [("пошлина", "title", "пошлины"), ("пошлина", "summary", "пошлина")]),
        ("нефти", [("нефти", "summary", "нефть")]),
        ('"экспортная пошлина"', [("экспортная пошлина", "summary", "Экспортная пошлина")]),
        ("lang:ru", []),
        ("country:KZ", [("казахстан*", "title", "Казахстан")]),
        # The sample preset's exclusion is English-only, so "Тарифы на
        # электроэнергию" does not exclude it.
        ("topic:tariffs", [("пошлин*", "title", "пошлины"), ("пошлин*", "summary", "пошлина")]),
    ],
)
def test_russian_article(query, expected):
    assert hits(query, RU_TITLE, RU_SUMMARY, "Kursiv") == expected


def test_exclusion_removes_a_preset_match():
    assert hits("topic:tariffs", "Utility tariffs rise", "") is None
    assert hits("topic:tariffs", "Import tariffs rise", "") == [("tariff*", "title", "tariffs")]


def test_evidence_order_and_terms():
    evidence = Evidence.of(
        [
            Hit("b", "summary", 0, 1),
            Hit("a", "title", 5, 6),
            Hit("b", "title", 1, 2),
            Hit("b", "title", 1, 2),
        ]
    )
    assert evidence.hits == (Hit("b", "title", 1, 2), Hit("a", "title", 5, 6), Hit("b", "summary", 0, 1))
    assert evidence.terms() == ["b", "a"]
