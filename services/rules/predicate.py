"""Rules compiled to yes/no tests over a document's look-up tables: the
Matcher's exact step. Evidence is worked out separately, only when asked for
(`services.rules.compiled`), so deciding a match allocates almost nothing.
What the two share (dispatch, presets, look-ups, NEAR) is in
`services.rules.closures`; what is here is what only a yes/no test can do:
stop at the first branch that decides, and skip branches by their cover.

ORs are where presets spend their time (a preset is an OR of dozens of
terms, phrases, ANDs and NEARs, each with its own ORs). Every key any OR
looks up is also put in one vocabulary per compiler, and each article's keys
among it are found once (`_Found`, kept in `Document.memo`) and shared by
every OR of every preset: an OR then intersects its own keys with those few
keys rather than with the article's sets. The same found keys gate an OR's
AND and NEAR children (`_gate`): such a child is filed under the cover of one
of its parts only, and is tested only if the article also has a key of each
of its other parts.
"""
from __future__ import annotations

import weakref
from bisect import bisect_left, bisect_right
from typing import Callable, Iterable

from services.rules import verdicts
from services.rules.clauses import PREFIX_KEY, Feature, cover, cover_score, feature
from services.rules.closures import ClosureCompiler, fast_spans, has, lookup_table, near_holds, simple_key
from services.rules.document import Document
from services.rules.nodes import BOTH, And, Leaf, Meta, Near, Node, Not, Or, Term
from services.rules.text import starts_any

Test = Callable[[Document], bool]
# Parts that must each be found for an OR's child to be worth testing: each
# part a tuple of (table, keys) of which the article must have one key.
Gate = tuple[tuple[tuple[str, frozenset], ...], ...]


class PredicateCompiler(ClosureCompiler[Test]):
    MEMO = "match"

    def __init__(self):
        super().__init__()
        self._covers: dict = {}  # `clauses.cover`'s cache of preset covers
        # {table: keys} of every OR compiled. It only grows; `_version` is
        # replaced when it does, so an article's `_Found` made before (a
        # Document can be matched again later) is not reused.
        self._vocab: dict[str, set] = {}
        self._version = object()
        self._sorted_prefixes: dict[str, list[str]] = {}  # the p1..p3 tables of `_vocab`, sorted (see `_Found`)

    def _found(self, d: Document) -> "_Found":
        """The article's keys among the vocabulary (made once per article
        and vocabulary)."""
        found = d.memo.get(_FOUND)
        if found is None or found.version is not self._version:
            found = d.memo[_FOUND] = _Found(d, self._vocab, self._sorted_prefixes, self._version)
        return found

    def _learn(self, index: dict[str, Iterable]) -> None:
        for table, keys in index.items():
            known = self._vocab.setdefault(table, set())
            if not known.issuperset(keys):
                known.update(keys)
                self._version = object()
                if table in SHORT_PREFIX_TABLES:
                    self._sorted_prefixes[table] = sorted(known)

    def leaf(self, leaf: Leaf) -> Test:
        simple = simple_key(leaf)
        if simple is not None:
            table, length, key = simple
            fields = leaf.fields
            if table == "stem" and fields == BOTH:  # the most common leaf
                return lambda d: key in d.stem_set
            if length or table != "prefix":
                return lambda d: key in lookup_table(d, table, length, fields)
            if fields == BOTH:  # a long prefix: the commonest check in big rule sets
                first = key[:PREFIX_KEY]

                def long_prefix(d: Document) -> bool:
                    return first in d.table("p4") and starts_any(d.sorted_words, key)

                return long_prefix
            return lambda d: has(d, table, length, fields, key)
        # A phrase of several words: its first pair must be in the document.
        pair = (leaf.words[0], leaf.words[1])
        names = leaf.fields
        return lambda d: pair in d.bigrams and any(fast_spans(leaf, d.fields[n]) for n in names)

    def all_of(self, node: And) -> Test:
        flat = _stem_conjunction(node)
        if flat is not None:
            required, forbidden = flat
            return lambda d: required <= d.stem_set and forbidden.isdisjoint(d.stem_set)
        tests = [self.compile(c) for c in node.children]
        if len(tests) == 2:
            a, b = tests
            return lambda d: a(d) and b(d)
        return lambda d: all(t(d) for t in tests)

    def any_of(self, node: Or) -> Test:
        # Each child is filed by table and key: a child that one key decides
        # (a term, a one- or two-word phrase, a short prefix) as None, the
        # others (AND, NEAR, long prefixes...) under each feature of their
        # cover, so an article is tested only against the children whose
        # cover it has, as the Matcher does with whole rules.
        index: dict[str, dict] = {}
        others: list[Test] = []  # no cover (a NOT, say): always tested
        for child in node.children:
            exact = feature(child)
            if exact is not None:
                index.setdefault(exact[0], {})[exact[1]] = None
                continue
            test = self.compile(child)
            features = cover(child, self._covers)
            if features is None:
                others.append(test)
                continue
            waiting = (self._gate(child, features), test)
            for table, key in features:
                keys = index.setdefault(table, {})
                tests = keys.get(key, ())
                if tests is not None:  # None: the key alone decides, no test needed
                    keys[key] = tests + (waiting,)
        self._learn(index)
        # The keys that decide alone are tried first, all tables, without
        # building a set; the article's hits among the shared vocabulary are
        # few, so the waiting children are found by looking each hit up.
        deciding = tuple((table, frozenset(k for k, tests in keys.items() if tests is None))
                         for table, keys in index.items() if None in keys.values())
        filed = tuple((table, {k: tests for k, tests in keys.items() if tests is not None})
                      for table, keys in index.items() if any(keys.values()))
        found_in = self._found

        def any_of(d: Document) -> bool:
            found = found_in(d)
            for table, keys in deciding:
                if not keys.isdisjoint(found[table]):
                    return True
            if filed:
                waiting: list = []  # (gate, test)
                for table, keys in filed:
                    for key in found[table]:
                        tests = keys.get(key)
                        if tests is not None:
                            waiting += tests
                # A child filed under several keys the article has runs once.
                for gate, test in (dict.fromkeys(waiting) if len(waiting) > 1 else waiting):
                    if (gate is None or _passes(gate, found)) and test(d):
                        return True
            for test in others:
                if test(d):
                    return True
            return False

        return any_of

    def _gate(self, child: Node, filed: list[Feature]) -> "Gate | None":
        """What else an OR's child filed under the features `filed` needs
        before it is worth testing: the cover of each part that must match
        (each child of an AND, both sides of a NEAR), as looked up in the
        article's `_Found`. Most children filed under one feature of one
        part (`cover` keeps the best part's only) fail on another part, and
        these few set look-ups cost far less than the test. None: nothing
        else to check."""
        filed_set = set(filed)
        gate: dict[frozenset, None] = {}
        for part in _required(child, self._covers):
            features = frozenset(part)
            # The verdicts table costs a model's score per look-up; and a
            # part holding every feature the child is filed under is known
            # to be there. (Leaving a part out only makes the gate weaker.)
            if filed_set <= features or any(table == verdicts.TABLE for table, _ in features):
                continue
            gate[features] = None
        if not gate:
            return None
        # A part implied by a narrower one is dropped; the rarest is
        # looked up first, since it is likeliest to rule the child out.
        parts = [p for p in gate if not any(q < p for q in gate)]
        parts.sort(key=lambda p: -cover_score(list(p)))
        self._learn(_by_table(frozenset().union(*parts)))
        return tuple(tuple(_by_table(part).items()) for part in parts)

    def negation(self, node: Not) -> Test:
        inner = self.compile(node.child)
        return lambda d: not inner(d)

    def near(self, node: Near) -> Test:
        return near_holds(node)

    def meta(self, node: Meta) -> Test:
        value = node.value
        if node.field == verdicts.FIELD:
            return lambda d: verdicts.holds(d, value)
        if node.field == "source":
            return lambda d: d.source == value
        return lambda d: d.lang == value


def _required(node: Node, covers: dict) -> list[list[Feature]]:
    """Covers (`clauses.cover`) that any match of `node` hits each of."""
    cls = node.__class__
    if cls is And:
        return [part for child in node.children for part in _required(child, covers)]
    if cls is Near:
        return _required(node.left, covers) + _required(node.right, covers)
    found = cover(node, covers)
    return [] if found is None else [found]


def _by_table(features: frozenset) -> dict[str, frozenset]:
    grouped: dict[str, set] = {}
    for table, key in features:
        grouped.setdefault(table, set()).add(key)
    return {table: frozenset(keys) for table, keys in grouped.items()}


def _passes(gate: Gate, found: "_Found") -> bool:
    for part in gate:
        for table, keys in part:
            hits = found[table]
            if hits and not keys.isdisjoint(hits):
                break
        else:
            return False
    return True


def _both_stem(node: Node) -> str | None:
    return node.stem if isinstance(node, Term) and node.fields == BOTH else None


def _stem_conjunction(node: And) -> tuple[frozenset, frozenset] | None:
    """For the commonest shape, `a b -c -(d OR e)` over plain terms in both
    fields: (stems required, stems forbidden), tested with two set
    operations. With 100k rules a test's cost is mostly memory traffic, so
    fewer objects per rule is what makes it fast. None for other shapes."""
    required: set[str] = set()
    forbidden: set[str] = set()
    for child in node.children:
        stem = _both_stem(child)
        if stem is not None:
            required.add(stem)
            continue
        if not isinstance(child, Not):
            return None
        inner = child.child
        stems = [_both_stem(inner)] if not isinstance(inner, Or) else [_both_stem(c) for c in inner.children]
        if None in stems:
            return None
        forbidden.update(stems)
    return frozenset(required), frozenset(forbidden)


_FOUND = (PredicateCompiler.MEMO, "found")  # where `_Found` is kept in Document.memo


class _Found(dict):
    """{table: the vocabulary's keys that one article has}, each table
    worked out on first use."""

    __slots__ = ("doc", "vocab", "sorted_prefixes", "version")

    def __init__(self, doc: Document, vocab: dict[str, set], sorted_prefixes: dict[str, list[str]], version: object):
        super().__init__()
        # Weakly: the Document keeps this in its memo, and a strong
        # reference back would make every matched article a reference cycle,
        # freed (tokens and all) only by the cyclic GC, not when the last
        # reference goes. That cost ~10% of a match at 10k rules (GC time).
        self.doc = weakref.ref(doc)
        self.vocab = vocab
        self.sorted_prefixes = sorted_prefixes
        self.version = version

    def __missing__(self, table: str) -> set:
        vocab = self.vocab[table]
        doc = self.doc()
        if table in SHORT_PREFIX_TABLES:
            found = _short_prefixes(doc, int(table[1:]), self.sorted_prefixes[table])
        elif table == verdicts.TABLE:  # each verdict worked out when asked (index._keys_in)
            found = set(verdicts.holding(doc, vocab))
        else:
            found = doc.table(table) & vocab
        self[table] = found
        return found


def _short_prefixes(doc: Document, length: int, prefixes: list[str]) -> set[str]:
    """Those of `prefixes` (1-3 letters, sorted) that start a word of `doc`.
    Only the prefixes from the first word's first letter to the last word
    (in sorted order) can, which rules out most at once (an English text has
    no word between the Cyrillic ones); a few are a binary search each in
    the sorted words (shared with the long prefixes), more are cheaper as
    one intersection with the article's set of such prefixes."""
    words = doc.sorted_words
    if not words:
        return set()
    candidates = prefixes[bisect_left(prefixes, words[0][:1]) : bisect_right(prefixes, words[-1])]
    if len(candidates) <= FEW_PREFIXES:
        found = set()
        end = len(words)
        for k in candidates:  # `starts_any` inlined: this runs for most articles
            i = bisect_left(words, k)
            if i < end and words[i].startswith(k):
                found.add(k)
        return found
    return doc.prefix_set(length).intersection(candidates)


# The 1-3 letter prefix tables, and how many of their keys are still cheaper
# as a binary search each in an article's sorted words than as one set of the
# article's short prefixes (the Matcher's index reads these too).
SHORT_PREFIX_TABLES = frozenset({"p1", "p2", "p3"})
FEW_PREFIXES = 16
