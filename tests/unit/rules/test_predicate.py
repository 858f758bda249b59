"""The yes/no compiler's shortcuts (services/rules/predicate.py) give what the
reference evaluator gives: an OR's child is tested only when the article has
a key of every part it needs (its gate), short prefixes are looked up among
the article's sorted words, NEAR stops at the first pair in range."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.rules import Document, evaluate, load_presets, parse
from services.rules.predicate import PredicateCompiler
from tests.unit.rules.test_matcher import articles, queries

PRESETS = load_presets(Path(__file__).resolve().parents[2] / "data" / "presets")


def _agree(query: str, title: str, summary: str) -> bool:
    rule = parse(query, PRESETS)
    doc = Document(title, summary, source="AP")
    got = PredicateCompiler().compile(rule)(doc)
    assert got is (evaluate(rule, doc) is not None)
    return got


@pytest.mark.parametrize(
    "query, title, summary, matches",
    [
        # An AND filed under one child's cover: the others gate it.
        ("(oil AND pipeline) OR embargo", "oil pipeline", "", True),
        ("(oil AND pipeline) OR embargo", "oil", "", False),
        ("(oil AND pipeline) OR embargo", "pipeline", "", False),
        # Its parts may sit in different fields.
        ("(oil AND pipeline) OR embargo", "oil", "a pipeline", True),
        # A NOT child gates nothing: the AND still runs without it.
        ("(oil AND NOT gas) OR embargo", "oil", "", True),
        ("(oil AND NOT gas) OR embargo", "oil and gas", "", False),
        ("(oil AND NOT (gas OR coal)) OR embargo", "oil", "coal", False),
        ("(oil AND -gas AND pipeline) OR embargo", "oil pipeline", "", True),
        ("(oil AND -gas AND pipeline) OR embargo", "oil", "", False),
        # NEAR: both sides gate it, and the first pair in range decides.
        ("(oil NEAR/3 pipeline) OR embargo", "oil and the pipeline", "", True),
        ("(oil NEAR/1 pipeline) OR embargo", "oil and the pipeline", "", False),
        ("(oil NEAR/1 pipeline) OR embargo", "oil", "pipeline", False),
        ("(oil NEAR/1 pipeline) OR embargo", "pipeline far from here oil pipeline", "", True),
        ("(oil NEAR/1 pipeline) OR embargo", "oil oil", "", False),
        ('("crude oil" NEAR/3 pipeline) OR embargo', "crude oil in a pipeline", "", True),
        ('("crude oil" NEAR/2 pipeline) OR embargo', "crude oil in a pipeline", "", False),
        # Nested ANDs, ORs and NEARs: every part that must match gates.
        ("((oil AND (gas OR coal)) AND pipeline) OR embargo", "oil coal pipeline", "", True),
        ("((oil AND (gas OR coal)) AND pipeline) OR embargo", "oil pipeline", "", False),
        ("((oil AND (gas OR coal)) AND pipeline) OR embargo", "oil gas", "", False),
        ("((oil NEAR/2 gas) AND (pipeline OR tanker)) OR embargo", "oil and gas tanker", "", True),
        ("((oil NEAR/2 gas) AND (pipeline OR tanker)) OR embargo", "oil and gas", "", False),
        ("((oil NEAR/1 gas) AND (pipeline OR tanker)) OR embargo", "oil and the gas tanker", "", False),
        # Prefixes, short and long, as gates.
        ("(pipe* AND oil) OR embargo", "pipelines of oil", "", True),
        ("(pipe* AND oil) OR embargo", "oil", "", False),
        ("(pip* AND oil*) OR embargo", "pipes of oilfields", "", True),
        ("(pip* AND oil*) OR embargo", "pops of oilfields", "", False),
        ("(pipelin* NEAR/3 oil) OR embargo", "the pipelines carry oil", "", True),
        ("(pipelin* NEAR/3 oil) OR embargo", "the pipe carries oil", "", False),
        ("(ga* NEAR/1 oil) OR embargo", "gas oil", "", True),
        ("(o* AND gas) OR embargo", "oil gas", "", True),
        ("(o* AND gas) OR embargo", "gas", "", False),
        # Several prefixes, some out of the article's range of words.
        ("(ban* AND сом*) OR (cap* AND fee*) OR embargo", "cap fees", "", True),
        ("(ban* AND сом*) OR (cap* AND fee*) OR embargo", "banks сомы", "", True),
        ("(ban* AND сом*) OR (cap* AND fee*) OR embargo", "banks fees", "", False),
        # Title- or summary-only parts: the gate reads both fields, the test
        # then the one it names.
        ("(title:oil AND pipeline) OR embargo", "oil", "pipeline", True),
        ("(title:oil AND pipeline) OR embargo", "pipeline", "oil", False),
        ("(summary:oil NEAR/1 pipeline) OR embargo", "oil pipeline", "", False),
        ("(summary:oil NEAR/1 pipeline) OR embargo", "", "oil pipeline", True),
        ('(title:"oil pipeline" AND gas) OR embargo', "oil pipeline", "gas", True),
        ('(title:"oil pipeline" AND gas) OR embargo', "gas", "oil pipeline", False),
        # One child filed under several keys the article has is tried once
        # and still found; the key that decides alone wins.
        ("((oil OR gas) AND pipeline) OR embargo", "oil gas pipeline", "", True),
        ("((oil OR gas) AND pipeline) OR embargo", "oil gas", "", False),
        ("oil OR (oil AND pipeline)", "oil", "", True),
        ("embargo OR (oil AND pipeline)", "embargo", "", True),
        # Source and language as parts.
        ("(oil AND source:ap) OR embargo", "oil", "", True),
        ("(oil AND source:reuters) OR embargo", "oil", "", False),
        ("(oil AND lang:ru) OR embargo", "oil", "", False),
        # A preset as a part.
        ("(country:KZ AND pipeline) OR embargo", "Astana pipeline", "", True),
        ("(country:KZ AND pipeline) OR embargo", "pipeline", "", False),
    ],
)
def test_gated_children_match_as_evaluate_does(query, title, summary, matches):
    assert _agree(query, title, summary) is matches


def test_an_or_compiled_later_sees_its_gate_keys():
    # Gate keys join the shared vocabulary: an article first tested by an
    # OR compiled before them must not read its stale found keys.
    compiler = PredicateCompiler()
    doc = Document("oil pipeline", "")
    assert compiler.compile(parse("gas OR coal"))(doc) is False
    assert compiler.compile(parse("(oil AND pipeline) OR coal"))(doc) is True
    assert compiler.compile(parse("(oil NEAR/1 pipeline) OR coal"))(doc) is True
    assert compiler.compile(parse("(oil* AND pip*) OR coal"))(doc) is True


@settings(max_examples=300, deadline=None)
@given(queries, st.lists(articles, min_size=1, max_size=4))
def test_a_fresh_compiler_equals_evaluate(query, article_list):
    # One compiler per rule: in the Matcher other rules' ORs fill the shared
    # vocabulary, which could hide a gate key that was never added to it.
    rule = parse(query, PRESETS)
    test = PredicateCompiler().compile(rule)
    for article in article_list:
        doc = Document.from_article(article)
        assert test(doc) is (evaluate(rule, doc) is not None), query


@pytest.mark.parametrize("query", ["topic:tariffs country:KZ", "country:KZ OR (oil NEAR/3 pipeline)", "(oil AND pipe*) OR coal"])
def test_a_tested_document_is_freed_without_the_cyclic_gc(query):
    # The found keys kept in the document's memo point back at it weakly: a
    # strong reference made every matched article a reference cycle, its
    # tokens held until the cyclic GC ran (~10% of a match at 10k rules).
    test = PredicateCompiler().compile(parse(query, PRESETS))
    gc.disable()
    try:
        doc = Document("Kazakhstan raises duties on imported cars", "Oil pipeline talks in Astana; coal prices.")
        test(doc)
        assert doc.memo, "the test kept nothing in the memo: this checks nothing"
        alive = weakref.ref(doc)
        del doc
        assert alive() is None
    finally:
        gc.enable()
