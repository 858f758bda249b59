"""services/yamlfile.py's plain reading: `load()` gives what the general
reading (`construct(compose(...))`) gives, value or error, and leaves to it
everything it does not handle. The limits themselves are tested in
tests/unit/test_config.py."""
from __future__ import annotations

import datetime as dt
import math
import random

import pytest
import yaml

from services import yamlfile

PARSERS = sorted(yamlfile.PARSERS)


def general(text: str, limits: yamlfile.Limits = yamlfile.LIMITS, parser: str = yamlfile.DEFAULT_PARSER):
    node = yamlfile.compose(text, "f.yaml", limits, parser)
    return None if node is None else yamlfile.construct(node, "f.yaml")


def outcome(fn, *args):
    try:
        return ("value", fn(*args))
    except yamlfile.YamlError as err:
        return ("error", str(err))


def same(a, b) -> bool:
    """Equal, NaN included, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


# (text, does the plain reading take it?)
CASES = [
    ("", True),
    ("# just a comment\n", True),
    ("x", True),
    ("'x'", True),
    ("[]", True),
    ("{}", True),
    ("- {name: r0, query: \"oil AND gas\"}\n- {name: 5, query: 'tariff*'}\n", True),
    ("a: 1\nb: -2\nc: 0x1f\nd: 0o17\ne: 017\nf: 1_000\ng: +3\n", True),
    ("a: 2.5\nb: .inf\nc: -.Inf\nd: .nan\ne: 1e3\nf: 6.8523015e+5\ng: 1.\n", True),
    ("a: ~\nb: null\nc: Null\nd:\ne: ''\n", True),
    ("a: yes\nb: No\nc: TRUE\nd: off\ne: on\nf: y\ng: n\n", True),
    ("a: 2024-01-02\nb: 2001-12-14t21:59:43.10-05:00\nc: 2001-12-14 21:59:43.10\n", True),
    ("name: null-ish\nnote: ~x\nn: nothing\nt: true story\n", True),
    ("a: 1\na: 2\nb: 3\na: 4\n", True),            # later value wins, first place kept
    ("1: a\ntrue: b\n~: c\n2024-01-02: d\n1.5: e\n", True),
    ("? a\n? b\n: c\n", True),                     # a key without a value
    ("a:\n  b:\n    c: [d, {e: f}]\n  g: []\n", True),
    ("- - - x\n  - y\n- z\n", True),
    ("a: ! 1\nb: ! x\n", True),                    # the non-specific tag: a string
    ("--- \na: 1\n...\n", True),
    ("%YAML 1.1\n---\na: 1\n", True),
    ("a: |\n  two\n  lines\nb: >\n  folded\n  text\n", True),
    ("a: \"\\u00e9\\t\"\nb: 'it''s'\n", True),
    ("a: 'Oʻzbekiston'\nb: Қазақстан\n", True),
    ("a: -\n", False),                             # a parse error: the general reading says it
    ("a: &x 1\nb: *x\n", False),
    ("a: &x [1, 2]\nb: *x\n", False),
    ("<<: {a: 1}\nb: 2\n", False),
    ("base: &b {a: 1}\nc:\n  <<: *b\n  d: 2\n", False),
    ("a: !!str 1\n", False),
    ("a: !!int x\n", False),
    ("a: !!binary aGVsbG8=\n", False),
    ("a: !!set {x, y}\n", False),
    ("a: !!omap [x: 1]\n", False),
    ("a: !custom x\n", False),
    ("- =\n", False),
    ("=: x\n", False),                             # the value key is a string
    ("? [1]\n: 2\n", False),                       # unhashable key
    ("? {a: 1}\n: 2\n", False),
    ("a: 2024-13-45\n", False),                    # a timestamp that is no date
    ("a: 1\n---\nb: 2\n", False),
    ("a: [1\n", False),
    ("a: b: c\n", False),
    ("\ta: 1\n", False),
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("text, plain", CASES)
def test_load_gives_what_the_general_reading_gives(text, plain, parser):
    got = outcome(yamlfile.load, text, "f.yaml", yamlfile.LIMITS, parser)
    want = outcome(general, text, yamlfile.LIMITS, parser)
    assert got[0] == want[0]
    assert same(got[1], want[1]) if got[0] == "value" else got[1] == want[1]
    if want[0] == "value":
        assert same(got[1], yaml.safe_load(text))
    try:
        taken = same(yamlfile.plain_load(text, yamlfile.LIMITS, parser), want[1])
    except Exception:  # noqa: BLE001
        taken = False
    assert taken == plain


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("limits, text, ok", [
    (yamlfile.Limits(max_depth=3), "[[[x]]]", True),
    (yamlfile.Limits(max_depth=3), "[[[[x]]]]", False),
    (yamlfile.Limits(max_depth=3), "a: {b: {c: 1}}", True),
    (yamlfile.Limits(max_depth=3), "a: {b: {c: []}}", False),
    (yamlfile.Limits(max_depth=1), "[]", True),
    (yamlfile.Limits(max_depth=0), "[]", False),
    (yamlfile.Limits(max_depth=0), "x", True),
    (yamlfile.Limits(expansion_ratio=0, min_expanded=3), "[a, b]", True),   # 3 nodes
    (yamlfile.Limits(expansion_ratio=0, min_expanded=2), "[a, b]", False),
])
def test_the_plain_reading_keeps_the_limits(limits, text, ok, parser):
    want = outcome(general, text, limits, parser)
    assert (want[0] == "value") == ok
    assert outcome(yamlfile.load, text, "f.yaml", limits, parser) == want
    if not ok:
        with pytest.raises(yamlfile.Unusual):
            yamlfile.plain_load(text, limits, parser)


def test_a_deep_document_is_refused_with_the_same_message_and_line():
    text = "a:\n" + "".join(" " * i + "- \n" for i in range(1, 80)) + " " * 80 + "x\n"
    got, want = outcome(yamlfile.load, text, "f.yaml"), outcome(general, text)
    assert got == want
    assert got[0] == "error" and "nested more than 64 levels deep" in got[1]


def random_data(rng: random.Random, depth: int = 0):
    scalars = [lambda: rng.randint(-10**6, 10**6), lambda: rng.random() * 1e6, lambda: rng.choice([True, False]),
               lambda: None, lambda: dt.date(2000 + rng.randint(0, 30), rng.randint(1, 12), rng.randint(1, 28)),
               lambda: rng.choice(["yes", "no", "null", "~", "1e3", "0x10", "=", "<<", "2024-01-02", "", " x ",
                                   "a: b", "- c", "Oʻzbekiston", "Қазақстан", "tariff*", '"q"', "it's", "#x",
                                   "1.5", ".inf", "NaN", "on", "y", "n", "a\nb"]),
               lambda: "".join(rng.choice("abcxyzАБВ01 -_:'\"#*&!") for _ in range(rng.randint(0, 12)))]
    kind = rng.random()
    if depth < 4 and kind < 0.25:
        return [random_data(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 4 and kind < 0.5:
        return {random_data(rng, 4): random_data(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return rng.choice(scalars)()


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("seed", range(30))
def test_random_documents_read_the_same(seed, parser):
    rng = random.Random(seed)
    data = [random_data(rng) for _ in range(20)]
    for style in (None, True, False):
        text = yaml.safe_dump(data, default_flow_style=style, allow_unicode=rng.random() < 0.5,
                              default_style=rng.choice([None, None, "'", '"']), sort_keys=False)
        got = outcome(yamlfile.load, text, "f.yaml", yamlfile.LIMITS, parser)
        want = outcome(general, text, yamlfile.LIMITS, parser)
        assert got[0] == want[0] == "value"
        assert same(got[1], want[1])


def test_a_rules_file_takes_the_plain_reading():
    text = "".join(f'- {{name: r{i}, query: "oil AND gas{i}"}}\n' for i in range(1000))
    assert yamlfile.plain_load(text) == [{"name": f"r{i}", "query": f"oil AND gas{i}"} for i in range(1000)]
