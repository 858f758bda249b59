"""The indexed Matcher returns exactly what the reference evaluator returns."""
from __future__ import annotations

from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from services.rules import Document, Matcher, evaluate, load_presets, parse

PRESETS = load_presets(Path(__file__).parent / "data" / "presets")

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


@settings(max_examples=300, deadline=None)
@given(st.lists(queries, min_size=4, max_size=16), st.lists(articles, min_size=2, max_size=4), st.data())
def test_matcher_equals_reference_evaluator(query_list, article_list, data):
    rules = {f"r{i}": parse(q, PRESETS) for i, q in enumerate(query_list)}
    matcher = Matcher(PRESETS)
    for key, rule in rules.items():
        matcher.add(key, rule)
    docs = [Document.from_article(a) for a in article_list]
    # Evidence is worked out lazily: read it only after every document has
    # been matched, so each must still describe its own document.
    results = [matcher.match(doc) for doc in docs]
    for doc, got in zip(docs, results):
        assert got == reference(rules, doc)
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
        assert list(matcher.match(doc)) == list(k for k in rules if k in reference(rules, doc))


def test_index_files_rules_under_their_cover_and_keeps_uncovered_rules_apart():
    matcher = Matcher(PRESETS)
    cases = [
        ("term", "tariff", {"s": ["tariff"]}),
        ("and picks one child", 'tariff AND "export duty"', {"b": ["export duty"]}),
        ("or needs every branch", "tariff OR uran*", {"s": ["tariff"], "p": ["uran"]}),
        ("near", "oil NEAR/3 pipelines", {"s": ["pipelin"]}),
        ("meta", "source:Reuters", {"m": ["source=reuters"]}),
        ("and over meta", "lang:ru нефть", {"s": ["нефт"]}),
        ("pure not", "-tariff", {}),
        ("or with a not", "tariff OR -oil", {}),
        ("preset", "country:KZ", {"p": ["kaza", "каза", "аста"], "s": ["astana"]}),
        ("long prefix", "kazakhstan*", {"p": ["kaza"]}),
    ]
    for key, query, _ in cases:
        matcher.add(key, query)
    for key, _, expected in cases:
        entry = matcher._entries[key]
        filed = {}
        for table, feature in entry.features or []:
            filed.setdefault(table, []).append(feature)
        assert filed == expected, key
        assert (entry.features is None) == (expected == {}), key
    assert {matcher._entries[k].id for k in ("pure not", "or with a not")} == matcher._always


def test_add_remove_and_replace_leave_no_trace():
    matcher = Matcher()
    matcher.add("a", "tariff OR uran*")
    matcher.add("b", "-gas")
    matcher.add("a", "oil")  # replaces
    assert len(matcher) == 2 and "a" in matcher
    assert list(matcher.match({"title": "Uranium tariffs", "summary": ""})) == ["b"]
    assert list(matcher.match({"title": "Oil", "summary": ""})) == ["b", "a"]
    matcher.remove("a")
    matcher.remove("b")
    assert matcher._tables == {t: {} for t in "swbpm"}
    assert matcher._prefix_lengths == {} and matcher._always == set()
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
