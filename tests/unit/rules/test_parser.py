"""The query language: canonical forms, precedence, fields, and errors with columns."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.rules import RuleError, load_presets, parse
from services.rules.nodes import Meta, Near, Not, Phrase, Prefix, PresetRef, Term

PRESETS = load_presets(Path(__file__).resolve().parents[2] / "data" / "presets")


@pytest.mark.parametrize(
    "query, canonical",
    [
        ("tariff", "tariff"),
        ('"export duty"', '"export duty"'),
        ("uran*", "uran*"),
        ("a b c", "(a AND b AND c)"),
        ("a OR b c", "(a OR (b AND c))"),
        ("a b OR c", "((a AND b) OR c)"),
        ("NOT a b", "((NOT a) AND b)"),
        ("a NOT b", "(a AND (NOT b))"),
        ("-a OR b", "((NOT a) OR b)"),
        ("-(a OR b)", "(NOT (a OR b))"),
        ('-"export duty"', '(NOT "export duty")'),
        ("NOT NOT a", "(NOT (NOT a))"),
        ("a AND (b OR c)", "(a AND (b OR c))"),
        ("((a))", "a"),
        ("and or not", "(and AND or AND not)"),  # lower case: ordinary terms
        ("a NEAR/5 b", "(a NEAR/5 b)"),
        ('title:a NEAR/3 "b c"', '(title:a NEAR/3 "b c")'),
        ("-a NEAR/2 b", "(NOT (a NEAR/2 b))"),
        ("a NEAR/2 b OR c", "((a NEAR/2 b) OR c)"),
        ('title:(cpc OR "caspian pipeline")', '(title:cpc OR title:"caspian pipeline")'),
        # An OR on a NEAR side: some pair is near (the docs' first example).
        ('title:(cpc OR "caspian pipeline") NEAR/5 attack*',
         '((title:cpc NEAR/5 attack*) OR (title:"caspian pipeline" NEAR/5 attack*))'),
        ("(a OR (b OR c*)) NEAR/2 (d OR e)",
         "((a NEAR/2 d) OR (a NEAR/2 e) OR (b NEAR/2 d) OR (b NEAR/2 e) OR (c* NEAR/2 d) OR (c* NEAR/2 e))"),
        ("(a) NEAR/3 b", "(a NEAR/3 b)"),
        ("title:(a summary:b)", "(title:a AND summary:b)"),  # the inner field wins
        ("summary:uran*", "summary:uran*"),
        ("source:Reuters lang:RU-ru", "(source:reuters AND lang:ru)"),
        ('source:"Kun UZ"', 'source:"kun uz"'),
        ("co-op", '"co-op"'),  # punctuation splits words: a phrase
        ("topic:tariffs country:kz", "(topic:tariffs AND country:KZ)"),
        ("Tariff", "Tariff"),  # kept as written; compared casefolded
        ("10:30", '"10:30"'),  # not a field name
    ],
)
def test_canonical_form(query, canonical):
    rule = parse(query, PRESETS)
    assert rule.render() == canonical
    assert parse(rule.render(), PRESETS) == rule  # the canonical form parses back


def test_leaves_carry_normalised_forms_and_fields():
    assert parse("Tariffs") == Term("Tariffs", "tariffs", "tariff")
    assert parse('title:"Export  Duty"') == Phrase("Export  Duty", ("export", "duty"), ("title",))
    assert parse("Üran*") == Prefix("Üran*", "uran")
    assert parse("a NEAR/5 b") == Near(Term("a", "a", "a"), Term("b", "b", "b"), 5)
    assert parse("-lang:ru") == Not(Meta("lang", "ru"))
    ref = parse("country:KZ", PRESETS)
    assert isinstance(ref, PresetRef) and ref.rule == PRESETS.resolve("country", "KZ")


def test_preset_effective_rule_is_query_and_not_exclude():
    assert parse("topic:tariffs", PRESETS).rule == parse(
        '(tariff* OR "export duty" OR пошлин*) AND NOT (electricity OR utility)'
    )


@pytest.mark.parametrize(
    "query, message, column",
    [
        ("", "empty query", 1),
        ("   ", "empty query", 1),
        ("tariff OR (duty", "unbalanced parenthesis", 11),
        ("tariff OR duty)", "unbalanced parenthesis", 15),
        ("(a))", "unbalanced parenthesis", 4),
        ("a ()", "empty parentheses", 3),
        ('a "export duty', "unbalanced quote", 3),
        ('a ""', "empty phrase", 3),
        ("a AND", "AND without a term after it", 3),
        ("a OR", "OR without a term after it", 3),
        ("a OR OR b", "OR without a term after it", 3),
        ("AND a", "AND without a term before it", 1),
        ("(OR a)", "OR without a term before it", 2),
        ("a NOT", "NOT without a term after it", 3),
        ("a -", "'-' needs a term, phrase or group right after it", 3),
        ("a NEAR b", "NEAR needs a distance, like NEAR/5", 3),
        ("a NEAR/x b", "NEAR needs a distance, like NEAR/5", 3),
        ("a NEAR/0 b", "NEAR distance must be between 1 and 1000", 3),
        ("a NEAR/3", "NEAR without a term after it", 3),
        ("NEAR/3 a", "NEAR without a term before it", 1),
        ("(a b) NEAR/3 c", "NEAR joins a term, prefix or phrase, or an OR of those, on each side", 1),
        ("(a OR -b) NEAR/3 c", "NEAR joins a term, prefix or phrase, or an OR of those, on each side", 1),
        ("a NEAR/3 lang:ru", "NEAR joins a term, prefix or phrase, or an OR of those, on each side", 10),
        ("a NEAR/3 (b OR country:kz)", "NEAR joins a term, prefix or phrase, or an OR of those, on each side", 10),
        ("(a OR b OR c OR d OR e OR f OR g OR h) NEAR/2 (i OR j OR k OR l OR m OR n OR o OR p OR q)",
         "NEAR over OR groups makes 72 pairs, at most 64: split the rule with OR", 40),
        ("a NEAR/3 b NEAR/3 c", "NEAR cannot be chained; join pairs with AND", 12),
        ("body:x", "unknown field 'body' (known: title, summary, source, lang, country, topic)", 1),
        ("a title:", "title: applies to a term, phrase, prefix or group", 3),
        ("title:-x", "title: applies to a term, phrase, prefix or group", 1),
        ("source:", "source: needs a value", 1),
        ("topic:nope", "unknown topic 'nope'", 1),
        ("a country:RU", "unknown country 'RU' (one of KZ, KG, UZ, TJ, TM)", 3),
        ("country:UZ", "unknown country 'UZ'", 1),  # valid code, no preset in this set
        ("a & b", "'&' has no letters or digits", 3),
        ("ur*an", "'*' may only end a prefix, like uran*", 3),
        ("*", "a prefix must be one word of letters or digits, like uran*", 1),
        ("co-op*", "a prefix must be one word of letters or digits, like uran*", 1),
        ("(" * 51 + "a" + ")" * 51, "nested more than 50 levels deep", 51),
        ("-" * 60 + "a", "nested more than 50 levels deep", 51),
    ],
)
def test_errors_name_the_column(query, message, column):
    with pytest.raises(RuleError) as caught:
        parse(query, PRESETS)
    assert (caught.value.message, caught.value.column) == (message, column)
    assert str(caught.value) == f"{message} at column {column}"


def test_display_puts_a_caret_under_the_column():
    query = "tariff OR (duty"
    with pytest.raises(RuleError) as caught:
        parse(query)
    assert str(caught.value) == "unbalanced parenthesis at column 11"
    assert caught.value.display(query) == "tariff OR (duty\n          ^"
    assert RuleError("x", 3).display("a\tb c") == "a\tb c\n \t^"


QUERY_CHARS = st.sampled_from(list('ab ()"-*:/') + ["AND ", "OR ", "NOT ", "NEAR/2 ", "NEAR ", "title:",
                                                     "source:", "topic:tariffs", "country:", "ё", "5"])


@settings(max_examples=500, deadline=None)
@given(st.lists(QUERY_CHARS, max_size=20).map("".join))
def test_any_text_parses_or_raises_rule_error(query):
    try:
        rule = parse(query, PRESETS)
    except RuleError as err:
        assert 1 <= err.column <= len(query) + 1
        assert err.display(query).startswith(query + "\n")
    else:
        assert parse(rule.render(), PRESETS) == rule
