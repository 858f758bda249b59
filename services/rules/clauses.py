"""Rules rewritten as clauses over document features: what the Matcher counts.

A rule becomes an OR of *clauses* (disjunctive normal form, NOT pushed down
to the leaves); a clause is an AND of literals. A literal is either

- a *feature* that must be present or absent: a key in one of a document's
  feature sets (`Document.table`), so the index can find it by look-up, or
- a *check* that must hold or fail: a leaf no single look-up decides (NEAR, a
  phrase of three or more words, a prefix longer than four letters or limited
  to one field, a preset), run as a compiled yes/no test.

Feature tables: `s` stem, `w` word (one-word phrase), `b` word pair
(two-word phrase), each for both fields; `ts`/`tw`/`tb` and `ss`/`sw`/`sb`
the same for the title or the summary alone; `p1`..`p4` a word prefix of that
many letters; `m` `source=NAME` or `lang=xx`; `v` a relevance model's
verdict (`fx>`, see verdicts.py).

A rule whose clauses would exceed MAX_CLAUSES (ANDs of long ORs multiply) is
not rewritten: `clauses()` returns None and the Matcher tests it whole.
"""
from __future__ import annotations

from itertools import product
from typing import Hashable, NamedTuple

from services.rules import verdicts
from services.rules.text import stem_normalised
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term

MAX_CLAUSES = 64
PREFIX_KEY = 4  # prefixes up to this long are look-ups; longer ones are checks
Feature = tuple[str, Hashable]  # (table, key)
_FIELD_TABLE = {BOTH: "", ("title",): "t", ("summary",): "s"}


class Clause(NamedTuple):
    present: frozenset  # features
    absent: frozenset  # features
    holds: frozenset  # check nodes that must hold
    fails: frozenset  # check nodes that must fail


class _Too(Exception):
    """The clause count passed MAX_CLAUSES."""


def feature(node: Node) -> Feature | None:
    """The feature that decides a leaf exactly, or None (a check)."""
    # By exact class: the node classes are final, and this runs for every
    # leaf of every rule loaded.
    cls = node.__class__
    if cls is Term:
        return (_FIELD_TABLE[node.fields] + "s", node.stem)
    if cls is Phrase:
        words = node.words
        if len(words) == 1:
            return (_FIELD_TABLE[node.fields] + "w", words[0])
        if len(words) == 2:
            return (_FIELD_TABLE[node.fields] + "b", words)
        return None
    if cls is Prefix:
        if node.fields == BOTH and len(node.prefix) <= PREFIX_KEY:
            return (f"p{len(node.prefix)}", node.prefix)
        return None
    if cls is Meta:
        # A relevance model's verdict is a check, not a look-up: as a
        # feature, a veto (NOT model:fx<) would be looked up for every
        # article and cost a model's score each time; as a check it runs
        # only for an article whose keywords matched (verdicts.py).
        return None if node.field == verdicts.FIELD else _meta_feature(node)
    return None


def _meta_feature(node: Meta) -> Feature:
    if node.field == verdicts.FIELD:  # a verdict's cover (it is a check, see feature())
        return (verdicts.TABLE, node.value)
    return ("m", f"{node.field}={node.value}")


def clauses(rule: Node) -> list[Clause] | None:
    """The rule as clauses (None: too many). Duplicates are dropped."""
    try:
        literal_sets = _positive(rule)
    except _Too:
        return None
    out = []
    for literals in (literal_sets if len(literal_sets) == 1 else dict.fromkeys(literal_sets)):
        # Sets made only for the parts a clause has (most have one or two
        # literals), each frozen as before so it is laid out the same.
        parts: list = [None, None, None, None]
        for node, positive in literals:
            f = feature(node)
            index = (0 if positive else 1) if f is not None else (2 if positive else 3)
            part = parts[index]
            if part is None:
                part = parts[index] = set()
            part.add(f if f is not None else node)
        out.append(Clause(*[_NONE if part is None else frozenset(part) for part in parts]))
    return out


_NONE: frozenset = frozenset()


# Each clause is a frozenset of (leaf node, positive?) while being built.
def _positive(node: Node) -> list[frozenset]:
    cls = node.__class__
    if cls in _LEAVES:
        return [frozenset(((node, True),))]
    if cls is Or:
        return [c for child in node.children for c in _positive(child)]
    if cls is And:
        return _product([_positive(child) for child in node.children])
    if cls is Not:
        return _negative(node.child)
    return [frozenset(((_leaf(node), True),))]


def _negative(node: Node) -> list[frozenset]:
    cls = node.__class__
    if cls in _LEAVES:
        return [frozenset(((node, False),))]
    if cls is Or:  # not (a or b) = not a and not b
        return _product([_negative(child) for child in node.children])
    if cls is And:  # not (a and b) = not a or not b
        return [c for child in node.children for c in _negative(child)]
    if cls is Not:
        return _positive(node.child)
    return [frozenset(((_leaf(node), False),))]


def _product(options: list[list[frozenset]]) -> list[frozenset]:
    size = 1
    for o in options:
        size *= len(o)
    if size > MAX_CLAUSES:
        raise _Too
    if size == 1:  # an AND of single clauses: one clause
        return [frozenset().union(*[o[0] for o in options])]
    return [frozenset().union(*combo) for combo in product(*options)]


_LEAVES = frozenset({Term, Phrase, Prefix, Meta, Near})


def _leaf(node: Node) -> Node:
    if isinstance(node, (Term, Phrase, Prefix, Meta, Near)):
        return node
    if isinstance(node, PresetRef):
        # Hashing a preset's whole tree for every rule that names it would
        # cost more than the rest of the rewrite: compare presets by identity.
        return _PresetKey(node)
    raise TypeError(f"not a rule node: {node!r}")


class _PresetKey:
    """A PresetRef hashed and compared by the identity of its tree."""

    __slots__ = ("node",)

    def __init__(self, node: PresetRef):
        self.node = node

    def __hash__(self) -> int:
        return id(self.node.rule)

    def __eq__(self, other) -> bool:
        return isinstance(other, _PresetKey) and other.node.rule is self.node.rule


def check_node(check) -> Node:
    """The rule node a check stands for (undoes the preset wrapper)."""
    return check.node if isinstance(check, _PresetKey) else check


# -- covers ------------------------------------------------------------
def _feature_score(f: Feature) -> float:
    """Rough rarity: longer keys are rarer; a word pair beats one word; a
    language is shared by a large share of all articles."""
    table, key = f
    if table == "m":
        return 4.0 if key.startswith("source=") else 0.0
    if table == "b":
        return 10.0 + len(key[0]) + len(key[1])
    if table[0] == "p":
        return float(len(key))
    return len(key) + 1.0


def cover_score(cover: list[Feature]) -> float:
    return min(map(_feature_score, cover)) - 0.5 * (len(cover) - 1)


def cover(node: Node, presets: dict) -> list[Feature] | None:
    """Features of which any match of `node` must contain at least one
    (None: it can match without any, e.g. under NOT). Fields are ignored, so
    these are looked up in the both-fields tables. `presets` caches the cover
    of each preset tree by id (the tree is kept alive alongside)."""
    if isinstance(node, Term):
        return [("s", node.stem)]
    if isinstance(node, Prefix):
        return [(f"p{min(len(node.prefix), 4)}", node.prefix[:4])]
    if isinstance(node, Phrase):
        words = node.words
        if len(words) == 1:
            # The word's stem: a document with the word has it, and the
            # stem table is one the index reads anyway.
            return [("s", stem_normalised(words[0]))]
        return [("b", max(zip(words, words[1:]), key=lambda p: len(p[0]) + len(p[1])))]
    if isinstance(node, Meta):
        return [_meta_feature(node)]
    if isinstance(node, Near):
        return max(cover(node.left, presets), cover(node.right, presets), key=cover_score)
    if isinstance(node, PresetRef):
        known = presets.get(id(node.rule))
        if known is None:
            known = presets[id(node.rule)] = (node.rule, cover(node.rule, presets))
        return known[1]
    if isinstance(node, Not):
        return None
    covers = [cover(c, presets) for c in node.children]
    if isinstance(node, And):
        usable = [c for c in covers if c is not None]
        return max(usable, key=cover_score) if usable else None
    if any(c is None for c in covers):  # Or
        return None
    return list(dict.fromkeys(f for c in covers for f in c))
