"""The indexed Matcher returns exactly what the reference evaluator returns."""
from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.rules import Document, Matcher, evaluate, load_presets, parse
from services.rules.compiled import EvidenceCompiler
from services.rules.predicate import PredicateCompiler

PRESETS = load_presets(Path(__file__).resolve().parents[2] / "data" / "presets")

# A small vocabulary so random rules and articles meet often: inflected
# English and Russian forms, accents, ё/е and й/и pairs.
WORDS = [
    "tariff", "tariffs", "duty", "duties", "export", "exports", "exported", "oil", "oils",
    "pipeline", "pipelines", "bank", "banks", "banking", "disrupted", "disruption", "gas",
    "Über", "uber", "café", "cafe", "CPC", "Astana", "kazakh", "electricity", "2026",
    "пошлина", "пошлины", "пошлин", "нефть", "нефти", "банк", "банка", "ёлка", "елка",
    "йод", "иод", "Казахстан", "казахстана",
]
SEPARATORS = [" ", " ", " ", ", ", " - ", "'", ". ", "_", "; "]

word = st.sampled_from(WORDS).flatmap(
    lambda w: st.sampled_from([w, w.lower(), w.upper(), w.capitalize()])
)


@st.composite
def text(draw, min_words=0, max_words=14):
    words = draw(st.lists(word, min_size=min_words, max_size=max_words))
    out = ""
    for w in words:
        out += w + draw(st.sampled_from(SEPARATORS))
    return out


articles = st.fixed_dictionaries(
    {
        "title": text(max_words=6),
        "summary": text(min_words=5, max_words=25),
        "source": st.sampled_from(["Reuters", "kursiv", ""]),
        "lang": st.sampled_from([None, "ru", "en", "RU-ru"]),
    }
)

field = st.sampled_from(["", "", "title:", "summary:"])
phrase = st.lists(word, min_size=1, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"')
prefix = st.tuples(st.sampled_from(WORDS), st.integers(1, 5)).map(lambda p: p[0][: p[1]] + "*")
leaf = st.tuples(field, st.one_of(word, phrase, prefix)).map("".join)
near = st.tuples(leaf, st.integers(1, 4), leaf).map(lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}")
meta = st.sampled_from(["source:reuters", "source:kursiv", "lang:ru", "lang:en",
                        "topic:tariffs", "country:KZ", "topic:kz-oil"])
atom = st.one_of(leaf, leaf, leaf, near, meta)


def combine(children):
    pair = st.tuples(children, children)
    either = pair.map(lambda p: f"({p[0]} OR {p[1]})")
    both = pair.map(lambda p: f"({p[0]} AND {p[1]})")
    # Mostly positive structure, so that a fair share of rules match with
    # evidence; negation mostly as "A AND NOT B".
    return st.one_of(
        either,
        either,
        either,
        both,
        pair.map(lambda p: f"({p[0]} {p[1]})"),
        pair.map(lambda p: f"({p[0]} -({p[1]}))"),
        pair.map(lambda p: f"({p[0]} NOT {p[1]})"),
        children.map(lambda c: f"-({c})"),
        st.tuples(st.sampled_from(["title:", "summary:"]), children).map(lambda p: f"{p[0]}({p[1]})"),
    )


queries = st.recursive(atom, combine, max_leaves=6)


def reference(rules, doc):
    out = {}
    for key, rule in rules.items():
        evidence = evaluate(rule, doc)
        if evidence is not None:
            out[key] = evidence
    return out


# The Matcher has two ways to the same answer (services/rules/index.py):
# Python sets for few postings per article, numpy arrays for many. It picks
# one by a running average; these force each.
PATHS = {"python": float("inf"), "numpy": 0.0}


def matcher_on(path: str, presets=None) -> Matcher:
    matcher = Matcher(presets)
    matcher.PYTHON_PATH_LIMIT = PATHS[path]
    return matcher


@pytest.mark.parametrize("path", PATHS)
@settings(max_examples=300, deadline=None)
@given(st.lists(queries, min_size=4, max_size=16), st.lists(articles, min_size=2, max_size=4), st.data())
def test_matcher_equals_reference_evaluator(path, query_list, article_list, data):
    rules = {f"r{i}": parse(q, PRESETS) for i, q in enumerate(query_list)}
    matcher = matcher_on(path, PRESETS)
    for key, rule in rules.items():
        matcher.add(key, rule)
    docs = [Document.from_article(a) for a in article_list]
    # Evidence is worked out lazily: read it only after every document has
    # been matched, so each must still describe its own document.
    results = [matcher.match(doc) for doc in docs]
    for doc, got in zip(docs, results):
        assert got == reference(rules, doc)
        # The bulk terms (what `tulpar classify` prints), also read late.
        assert got.terms() == [(k, tuple(e.terms())) for k, e in reference(rules, doc).items()]
        event(f"rules matched with hits: {min(3, sum(bool(e.hits) for e in got.values()))}")
        assert list(got) == [k for k in rules if k in got]  # rules in insertion order

    # Incremental updates: drop some rules, replace one, and compare again.
    dropped = data.draw(st.sets(st.sampled_from(sorted(rules))))
    for key in dropped:
        matcher.remove(key)
        del rules[key]
    replacement = data.draw(queries)
    rules["r0"] = parse(replacement, PRESETS)
    matcher.add("r0", replacement)
    rules = {k: rules[k] for k in [k for k in rules if k != "r0"] + ["r0"]}  # re-added keys go last
    for doc in docs:
        assert matcher.match(doc) == reference(rules, doc)
        assert matcher.match(doc).terms() == [(k, tuple(e.terms())) for k, e in reference(rules, doc).items()]
        assert list(matcher.match(doc)) == list(k for k in rules if k in reference(rules, doc))


def _filed(matcher: Matcher, key) -> dict:
    out: dict = {}
    for family, table, feature, _ in matcher._entries[key].filed:
        out.setdefault(family, set()).add((table, feature))
    return out


def test_index_files_each_clause_under_its_features():
    matcher = Matcher(PRESETS)
    cases = [
        # One feature and nothing else: the rule id itself, nothing to count.
        ("term", "tariff", {"direct": {("s", "tariff")}}),
        # Two or more features: counted under each (numpy path), found by
        # the rarest (Python path).
        ("and counts every feature", 'tariff AND "export duty"',
         {"counted": {("s", "tariff"), ("b", ("export", "duty"))}, "rarest": {("b", ("export", "duty"))}}),
        ("a field has its own table", "title:tariff oil",
         {"counted": {("ts", "tariff"), ("s", "oil")}, "rarest": {("ts", "tariff")}}),
        ("or: one clause per branch", "tariff OR uran*", {"direct": {("s", "tariff"), ("p4", "uran")}}),
        ("near is a check filed under its rarer side", "oil NEAR/3 pipelines", {"present": {("s", "pipelin")}}),
        ("meta alone", "source:Reuters", {"direct": {("m", "source=reuters")}}),
        ("two metas are counted", "source:Reuters lang:en",
         {"counted": {("m", "source=reuters"), ("m", "lang=en")}, "rarest": {("m", "source=reuters")}}),
        ("meta with a term filters, is not filed", "lang:ru нефть", {"present": {("s", "нефт")}}),
        ("absent", "tariff -(oil OR gas)", {"present": {("s", "tariff")}, "absent": {("s", "oil"), ("s", "gas")}}),
        ("pure not", "-tariff", {"absent": {("s", "tariff")}}),
        ("or with a not", "tariff OR -oil", {"direct": {("s", "tariff")}, "absent": {("s", "oil")}}),
        ("preset: a check under its cover", "country:KZ",
         {"present": {("p4", "kaza"), ("p4", "каза"), ("p4", "аста"), ("s", "astana")}}),
        ("long prefix", "kazakhstan*", {"present": {("p4", "kaza")}}),
    ]
    for key, query, _ in cases:
        matcher.add(key, query)
    for key, _, expected in cases:
        assert _filed(matcher, key) == expected, key
    # Clauses with nothing present to look up are tested on every article.
    entries = matcher._entries
    assert set(matcher._always) == {entries["pure not"].clauses[0], entries["or with a not"].clauses[0]}
    # A direct clause (a word, or a source alone) takes no clause id (nothing
    # in the per-clause columns); a clause that needs a check or a count does.
    assert entries["term"].clauses == entries["or: one clause per branch"].clauses == entries["meta alone"].clauses == []
    assert len(entries["or with a not"].clauses) == len(entries["two metas are counted"].clauses) == 1


@pytest.mark.parametrize("path", PATHS)
def test_an_and_of_long_ors_is_tested_whole(path):
    many = " ".join(f"(a{i} OR b{i} OR c{i})" for i in range(5))  # 3**5 clauses
    matcher = matcher_on(path)
    matcher.add("big", many)
    assert len(matcher._entries["big"].clauses) == 1 and len(matcher._checks) == 1
    words = " ".join(f"b{i}" for i in range(5))
    assert list(matcher.match({"title": words, "summary": ""})) == ["big"]
    assert list(matcher.match({"title": words[:-3], "summary": ""})) == []


@pytest.mark.parametrize("path", PATHS)
def test_add_remove_and_replace_leave_no_trace(path):
    matcher = matcher_on(path)
    matcher.add("a", "tariff OR uran*")
    matcher.add("b", "-gas")
    matcher.add("c", "lang:en oil NEAR/2 pipeline")
    matcher.add("a", "oil")  # replaces
    assert len(matcher) == 3 and "a" in matcher
    assert list(matcher.match({"title": "Uranium tariffs", "summary": ""})) == ["b"]
    assert list(matcher.match({"title": "Oil pipeline", "summary": ""})) == ["b", "c", "a"]
    for key in "abc":
        matcher.remove(key)
    matcher.refresh()
    assert matcher._postings.tables() == set()
    assert matcher._postings.arrays() == {} and matcher._postings.lists() == {}
    assert matcher._always == {} and matcher._checks == {} and matcher._meta_users == 0
    assert matcher.match({"title": "Oil", "summary": ""}) == {}


def test_preset_is_compiled_once_and_shared():
    matcher = Matcher(PRESETS)
    for i in range(3):
        matcher.add(i, f"country:KZ AND r{i}")
    assert len(matcher._predicates._presets) == 1
    got = matcher.match({"title": "Astana r1", "summary": "r3 ok"})
    assert list(got) == [1]
    assert got[1].terms() == ["astana", "r1"]
    assert len(matcher._compiler._presets) == 1


@pytest.mark.parametrize("compiler, matched, unmatched", [
    (PredicateCompiler, True, False),
    (EvidenceCompiler, [("astana", "title", 0, 6)], None),
])
def test_both_compilers_memoise_a_preset_under_one_key_scheme(compiler, matched, unmatched):
    compiled = compiler()
    ref = parse("country:KZ", PRESETS)
    test = compiled.compile(ref)
    assert compiled.compile(parse("country:KZ", PRESETS)) is test  # compiled once
    for title, expected in [("Astana", matched), ("Bishkek", unmatched)]:
        doc = Document(title, "")
        assert test(doc) == expected
        assert doc.memo[(compiler.MEMO, id(ref.rule))] == expected
        # Whatever else a compiler keeps per document is under its own tag.
        assert {key[0] for key in doc.memo} == {compiler.MEMO}


@pytest.mark.parametrize(
    "query, title, summary",
    [
        # Each kind of OR child: decided by one key (term, word, word pair,
        # short prefix, a field's own table, source/lang) or tested under
        # its cover (long prefix, long phrase, NEAR, AND, preset) or always
        # tested (no cover: a NOT).
        ("tariff OR embargo", "Tariffs", ""),
        ('"tariffs" OR embargo', "Tariff", "tariff"),
        ('"export duty" OR embargo', "export of duty", "duty export"),
        ('"export duty" OR embargo', "", "an export duty"),
        ("oi* OR embargo", "Oil", ""),
        ("oi* OR embargo", "", "o i"),
        ("title:oil OR embargo", "", "oil"),
        ("summary:oil OR title:gas", "gas", "oil"),
        ("source:ap OR embargo", "", ""),
        ("pipelin* OR embargo", "pipeline", ""),
        ("pipelinez* OR embargo", "pipeline", ""),
        ('"oil export duty" OR embargo', "oil export duty", ""),
        ('"oil export duty" OR embargo', "oil export, duty", ""),
        ("(oil NEAR/1 pipeline) OR embargo", "oil and pipeline", ""),
        ("(oil NEAR/2 pipeline) OR embargo", "oil and pipeline", ""),
        ("(oil gas) OR embargo", "oil", "gas"),
        ("(oil gas) OR embargo", "oil", "oil"),
        ("country:KZ OR embargo", "Astana", ""),
        ("-oil OR embargo", "gas", ""),
        ("-oil OR embargo", "oil", ""),
        # Several children under one key: all are tried.
        ("(oil NEAR/1 gas) OR (oil NEAR/3 pipeline) OR (oil tanker)", "oil for the pipeline", ""),
        # A key that decides alone wins over the tests filed under it.
        ("oil OR (oil NEAR/1 gas)", "oil", ""),
    ],
)
def test_predicate_or_equals_evaluate(query, title, summary):
    rule = parse(query, PRESETS)
    doc = Document(title, summary, source="AP")
    assert PredicateCompiler().compile(rule)(doc) is (evaluate(rule, doc) is not None)


def test_predicate_vocabulary_grows_between_uses_of_a_document():
    # Every OR's keys go in one vocabulary per compiler, and an article's
    # keys among it are kept in its memo: an OR compiled after the article
    # was first tested must not read that stale set.
    compiler = PredicateCompiler()
    doc = Document("oil", "")
    assert compiler.compile(parse("gas OR coal"))(doc) is False
    assert compiler.compile(parse("oil OR coal"))(doc) is True


@pytest.mark.parametrize("compiler", [PredicateCompiler, EvidenceCompiler])
@pytest.mark.parametrize("node", ["tariff", None, ("a", "b")])
def test_compilers_refuse_what_is_not_a_rule_node(compiler, node):
    with pytest.raises(TypeError, match="not a rule node"):
        compiler().compile(node)


@pytest.mark.parametrize(
    "query, title, summary, source, lang, matches",
    [
        # Counted clauses: every present feature, and only then.
        ("tariff AND duty", "Tariff", "tariff tariff", "", "en", False),
        ("tariff AND duty", "Tariff", "a duty", "", "en", True),
        ("title:tariff duty oil", "Tariff duty", "oil", "", "en", True),
        ("title:tariff duty oil", "duty", "tariff oil", "", "en", False),
        # Absent features rule a clause out, not the rule.
        ("(tariff -oil) OR (duty -gas)", "tariff duty", "oil", "", "en", True),
        ("(tariff -oil) OR (duty -gas)", "tariff duty", "oil gas", "", "en", False),
        # source:/lang: filter the clause they are in.
        ("lang:ru нефть OR source:ap oil", "нефть", "", "ap", "en", False),
        ("lang:ru нефть OR source:ap oil", "oil", "", "ap", "en", True),
        ("source:ap lang:en oil", "oil", "", "ap", "en", True),
        ("source:ap lang:en oil", "oil", "", "ap", "ru", False),
        ("source:ap source:reuters", "oil", "", "ap", "en", False),
        ("lang:en", "anything", "", "", "en", True),
        # A clause of checks only, and a NOT over a check.
        ("oil NEAR/1 pipeline", "oil and pipeline", "", "", "en", False),
        ("oil -(oil NEAR/1 pipeline)", "oil and pipeline", "", "", "en", True),
        ("uranium* -uraniumx*", "uraniums", "", "", "en", True),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_matcher_decides_each_clause_shape(path, query, title, summary, source, lang, matches):
    article = {"title": title, "summary": summary, "source": source, "lang": lang}
    matcher = matcher_on(path)
    matcher.add("r", query)
    assert ("r" in matcher.match(article)) is matches
    assert (evaluate(parse(query), Document.from_article(article)) is not None) is matches


def test_a_match_result_is_read_before_the_rules_change():
    matcher = Matcher()
    matcher.add("a", "oil")
    got = matcher.match({"title": "Oil", "summary": ""})
    evidence = got["a"]
    matcher.add("b", "gas")
    with pytest.raises(RuntimeError, match="rules changed"):
        list(got)
    with pytest.raises(RuntimeError):
        "a" in got
    assert evidence.terms() == ["oil"]  # taken before the change: still valid
    assert list(matcher.match({"title": "Oil gas", "summary": ""})) == ["a", "b"]


@pytest.mark.parametrize(
    "query, title, summary, terms",
    [
        # One distinct term: the same answer whatever the article.
        ("oil -(gas OR coal)", "x", "oil, oil", ("oil",)),
        ("Oil OR title:oil", "x", "oil", ("Oil",)),
        ("-gas lang:en", "x", "oil", ()),
        # First occurrence decides; title before summary; several leaves
        # of one text keep the earliest.
        ("gas oil", "oil", "gas oil", ("oil", "gas")),
        ("summary:oil gas title:gas", "gas", "oil", ("gas", "oil")),
        # At the same place: the shorter occurrence, then the text.
        ('"oil pipeline" OR oil', "", "oil pipeline", ("oil", "oil pipeline")),
        ("oils OR Oil", "", "oil", ("Oil", "oils")),
        # Two required leaves: one of two orders, or at the same place by text.
        ("title:gas oil", "oil gas", "", ("oil", "gas")),
        ("pipe* oil -coal", "", "pipes and oil", ("pipe*", "oil")),
        ("oils Oil", "", "oil", ("Oil", "oils")),
        # Prefixes and long phrases are looked up per leaf.
        ('pipe* "oil and gas" export', "", "export of oil and gas pipelines", ("export", "oil and gas", "pipe*")),
        # NEAR: the first occurrence that has a partner, not the first one.
        ("oil NEAR/1 gas", "oil", "oil x oil gas", ("oil", "gas")),
        ("oil NEAR/1 gas", "", "gas x oil x oil gas", ("oil", "gas")),
        # A preset's own terms, in an OR only when it matched.
        ("country:KZ OR oil", "oil", "Astana", ("oil", "astana")),
        ("country:KZ OR oil", "oil", "Bishkek", ("oil",)),
        # An AND under an OR is evaluated: only the branch that matched.
        ("(oil gas) OR pipeline", "oil pipeline", "", ("pipeline",)),
        ("(oil gas) OR pipeline", "oil pipeline", "gas", ("oil", "pipeline", "gas")),
    ],
)
def test_bulk_terms_are_the_evidence_terms(query, title, summary, terms):
    matcher = Matcher(PRESETS)
    matcher.add("r", query)
    got = matcher.match({"title": title, "summary": summary})
    assert got.terms() == [("r", terms)]
    assert tuple(evaluate(parse(query, PRESETS), Document(title, summary)).terms()) == terms


def test_bulk_terms_share_leaves_between_rules():
    matcher = Matcher()
    matcher.add("a", "oil gas")
    matcher.add("b", "gas OR oils")
    matcher.add("c", "title:oil gas")
    assert not matcher._terms._grid.kind[:3].any()  # plans are made when first asked for
    got = matcher.match({"title": "gas", "summary": "oil"})
    assert got.terms() == [("a", ("gas", "oil")), ("b", ("gas", "oils"))]
    matcher.add("d", "pipe* OR pipeline* OR oil")
    matcher.add("e", "pipe* gas")
    got = matcher.match({"title": "gas pipeline", "summary": ""})
    assert got.terms() == [("b", ("gas",)), ("d", ("pipe*", "pipeline*")), ("e", ("gas", "pipe*"))]
    assert len(matcher._terms.planner.leaves) == 2  # pipe* once for both rules


@pytest.mark.parametrize("limit", [500_000, 0])
def test_bulk_term_ids_agree_with_evaluate(limit):
    # The array path (one leaf of several occurs), the ordered fallback
    # (several occur, ties at one position broken by the term) and the
    # constant rules; with limit 0 the interned tuples start over before
    # every article.
    queries = ["oil", "oil OR gas OR pipeline", "oil* OR oil", "tariff OR tariffs", '"export duty" OR gas',
               '"export duty" OR oil OR gas*', "title:oil gas", "gas -oil", "lang:ru (нефть OR газ)",
               "oil NEAR/3 gas", "a OR b OR c OR d OR oil", "country:KZ oil"]
    matcher = Matcher(PRESETS)
    matcher._terms.DYNAMIC_LIMIT = limit
    for i, q in enumerate(queries):
        matcher.add(i, q)
    docs = [Document("Oil and gas", "the export duty on oil pipelines"), Document("Gas", "oil"),
            Document("Нефть", "газ и нефть"), Document("Kazakhstan oil exports", "tariffs and the tariff"),
            Document("", "")]
    for doc in docs:
        got = matcher.match(doc)
        ids, term_ids = got.term_ids()
        generation, values = matcher.terms_values()
        keys = matcher.keys_by_id()
        want = [(k, tuple(e.terms())) for k, e in reference({i: parse(q, PRESETS) for i, q in enumerate(queries)},
                                                             doc).items()]
        assert [(keys[i], values[t]) for i, t in zip(ids.tolist(), term_ids.tolist())] == want
        assert got.terms() == want


def test_a_matched_article_is_freed_without_the_cyclic_gc():
    # Nothing the match, its evidence or its terms leave in the Document
    # points back at it: with the cyclic GC off, dropping the last reference
    # frees it (a cycle held every article's tokens until the GC ran).
    matcher = Matcher(PRESETS)
    matcher.add("a", "topic:tariffs country:KZ")
    matcher.add("b", "(oil NEAR/3 pipeline) OR coal*")
    gc.disable()
    try:
        doc = Document("Kazakhstan raises the export duty on wheat", "Oil pipeline talks in Astana; coal prices.")
        matches = matcher.match(doc)
        assert list(matches) == ["a", "b"]
        assert matches.terms() and matches["b"]
        alive = weakref.ref(doc)
        del doc, matches
        assert alive() is None
    finally:
        gc.enable()
