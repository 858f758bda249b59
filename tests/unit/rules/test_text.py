"""Text normalisation, tokenising with offsets, stems and language inference."""
from __future__ import annotations

import pytest

from services.rules.document import Document
from services.rules.text import FieldText, normalise_word, stem_normalised, token, word_forms


@pytest.mark.parametrize(
    "word, expected",
    [
        ("Tariffs", "tariffs"),
        ("Über", "uber"),
        ("café", "cafe"),
        ("cafe\u0301", "cafe"),  # decomposed accent
        ("Ёлка", "елка"),
        ("ещё", "еще"),
        ("йод", "йод"),  # й keeps its breve: only Latin letters lose marks
        ("и\u0306од", "йод"),  # decomposed й recombines
        ("ŞEKER", "seker"),
        ("Straße", "strasse"),
        ("ﬁnance", "finance"),  # compatibility ligature
        ("Қазақстан", "қазақстан"),  # Kazakh letters are not accents
        ("2026", "2026"),
    ],
)
def test_normalise_word(word, expected):
    assert normalise_word(word) == expected


@pytest.mark.parametrize(
    "word, stem",
    [
        ("tariffs", "tariff"),
        ("disrupted", "disrupt"),
        ("disruption", "disrupt"),
        ("пошлины", "пошлин"),
        ("пошлина", "пошлин"),
        ("нефти", "нефт"),
        ("2026", "2026"),
    ],
)
def test_stems_by_script(word, stem):
    assert stem_normalised(normalise_word(word)) == stem


def test_word_forms_is_cached_and_stable():
    assert word_forms("Tariffs") == ("tariffs", "tariff")
    assert token("Tariffs") is token("Tariffs")
    assert token("Tariffs") == ("tariffs", "tariff", "tari")
    assert token("Oil") == ("oil", "oil", None)


@pytest.mark.parametrize(
    "text, words",
    [
        ("Kazakhstan's tariffs", [("Kazakhstan", 0, 10), ("s", 11, 12), ("tariffs", 13, 20)]),
        ("Atyrau–Samara, co-op", [("Atyrau", 0, 6), ("Samara", 7, 13), ("co", 15, 17), ("op", 18, 20)]),
        ("snake_case 5.93", [("snake", 0, 5), ("case", 6, 10), ("5", 11, 12), ("93", 13, 15)]),
        ("  «Нефть» ёлка  ", [("Нефть", 3, 8), ("ёлка", 10, 14)]),
        ("", []),
        ("-- !!", []),
    ],
)
def test_words_keep_offsets_into_the_original(text, words):
    field = FieldText(text)
    assert [(text[s:e], s, e) for s, e in field.spans] == words


def test_field_lookup_tables():
    field = FieldText("Oil, oil and more oils")
    assert field.word_pos["oil"] == [0, 1]
    assert field.stem_pos["oil"] == [0, 1, 4]
    assert field.prefix_set(2) >= {"oi", "an"}
    assert "a" not in field.prefix_set(2)


@pytest.mark.parametrize(
    "title, summary, lang, expected",
    [
        ("Тенге ослаб", "Курс доллара вырос", None, "ru"),
        ("Tenge weakens", "Нацбанк", None, "en"),
        ("Тенге weakens", "Нацбанк вмешался", None, "ru"),
        ("", "", None, "en"),
        ("Tenge", "", "RU-ru", "ru"),
        ("Тенге", "", "kk", "kk"),
    ],
)
def test_document_language(title, summary, lang, expected):
    assert Document(title, summary, "x", lang).lang == expected


def test_document_from_article_like_inputs():
    from services.news.article import Article

    article = Article(source="Kursiv", id="1", title="T", summary="S", link="")
    for value in (article, {"title": "T", "summary": "S", "source": "Kursiv"}):
        doc = Document.from_article(value)
        assert (doc.title, doc.summary, doc.source, doc.lang) == ("T", "S", "kursiv", "en")
