"""services/rules/clauses.py: the rewrite of a rule into clauses gives what
it gave before issue 11 made it faster, down to the order of the clauses and
of the features within each (the Matcher files them in that order)."""
from __future__ import annotations

import random
from itertools import product
from pathlib import Path

import pytest

from services.rules import clauses, load_presets, parse
from services.rules.clauses import Clause, Feature
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term

PRESETS = load_presets(Path(__file__).resolve().parents[2] / "data" / "presets")


# -- the rewrite as it was -----------------------------------------------------
def reference_feature(node: Node) -> Feature | None:
    """The feature that decides a leaf exactly, or None (a check)."""
    if isinstance(node, Term):
        return (clauses._FIELD_TABLE[node.fields] + "s", node.stem)
    if isinstance(node, Phrase):
        if len(node.words) == 1:
            return (clauses._FIELD_TABLE[node.fields] + "w", node.words[0])
        if len(node.words) == 2:
            return (clauses._FIELD_TABLE[node.fields] + "b", node.words)
        return None
    if isinstance(node, Prefix):
        if node.fields == BOTH and len(node.prefix) <= clauses.PREFIX_KEY:
            return (f"p{len(node.prefix)}", node.prefix)
        return None
    if isinstance(node, Meta):
        return ("m", f"{node.field}={node.value}")
    return None


def reference_clauses(rule: Node) -> list[Clause] | None:
    """The rule as clauses (None: too many). Duplicates are dropped."""
    try:
        literal_sets = _positive(rule)
    except clauses._Too:
        return None
    out = []
    for literals in dict.fromkeys(literal_sets):
        parts: tuple[set, set, set, set] = (set(), set(), set(), set())
        for node, positive in literals:
            f = reference_feature(node)
            index = (0 if positive else 1) if f is not None else (2 if positive else 3)
            parts[index].add(f if f is not None else node)
        out.append(clauses.Clause(*map(frozenset, parts)))
    return out


# Each clause is a frozenset of (leaf node, positive?) while being built.
def _positive(node: Node) -> list[frozenset]:
    if isinstance(node, Or):
        return [c for child in node.children for c in _positive(child)]
    if isinstance(node, And):
        return _product([_positive(child) for child in node.children])
    if isinstance(node, Not):
        return _negative(node.child)
    return [frozenset({(_leaf(node), True)})]


def _negative(node: Node) -> list[frozenset]:
    if isinstance(node, Or):  # not (a or b) = not a and not b
        return _product([_negative(child) for child in node.children])
    if isinstance(node, And):  # not (a and b) = not a or not b
        return [c for child in node.children for c in _negative(child)]
    if isinstance(node, Not):
        return _positive(node.child)
    return [frozenset({(_leaf(node), False)})]


def _product(options: list[list[frozenset]]) -> list[frozenset]:
    size = 1
    for o in options:
        size *= len(o)
    if size > clauses.MAX_CLAUSES:
        raise clauses._Too
    return [frozenset().union(*combo) for combo in product(*options)]


def _leaf(node: Node) -> Node:
    if isinstance(node, (Term, Phrase, Prefix, Meta, Near)):
        return node
    if isinstance(node, PresetRef):
        # Hashing a preset's whole tree for every rule that names it would
        # cost more than the rest of the rewrite: compare presets by identity.
        return clauses._PresetKey(node)
    raise TypeError(f"not a rule node: {node!r}")


# -- the comparison ------------------------------------------------------------
def layout(found):
    """Clauses as lists in iteration order (None stays None)."""
    return None if found is None else [[list(part) for part in clause] for clause in found]


def same_as_before(rule: Node) -> None:
    assert layout(clauses.clauses(rule)) == layout(reference_clauses(rule))


@pytest.mark.parametrize("query", [
    "oil", "oil gas", "oil OR gas", "-oil", "oil -gas -(a OR b)", "title:oil summary:gas*", "oil*", "oi*",
    '"a b"', '"a b c"', '"a"', "a NEAR/3 b", "lang:ru (a OR b)", "source:reuters -lang:en",
    "topic:tariffs oil", "-topic:tariffs", "country:KZ OR -country:KZ", "(a OR b) (c OR d) (e OR f)",
    "NOT (a AND (b OR NOT c))", "(a OR b OR c OR d) (e OR f OR g OR h) (i OR j OR k OR l)",  # past MAX_CLAUSES
    "(a OR b OR c OR d) (e OR f OR g OR h) (i OR j OR k OR l OR m)", "a a", "a OR a", "tariff tariffs",
    "a b c d e f g", "-a -b -c -d -e -f", "co-op u.s.",
])
def test_chosen_rules_rewrite_as_before(query):
    same_as_before(parse(query, PRESETS))


LEAVES = ["oil", "gas", "Oil", "tariff*", "ta*", "title:oil", "summary:gas", '"export duty"', '"a b c"', '"x"',
          "lang:ru", "source:reuters", "topic:tariffs", "country:KZ", "a NEAR/2 b", "co-op"]


def random_query(rng: random.Random, depth: int = 0) -> str:
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(LEAVES)
    parts = [random_query(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    joined = rng.choice([" ", " AND ", " OR "]).join(parts)
    return rng.choice(["", "-", "NOT "]) + f"({joined})"


@pytest.mark.parametrize("seed", range(10))
def test_random_rules_rewrite_as_before(seed):
    rng = random.Random(seed)
    for _ in range(300):
        same_as_before(parse(random_query(rng), PRESETS))
