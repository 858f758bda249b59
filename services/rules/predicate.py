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
keys rather than with the article's sets.
"""
from __future__ import annotations

from typing import Callable

from services.rules import verdicts
from services.rules.clauses import PREFIX_KEY, cover, feature
from services.rules.closures import ClosureCompiler, fast_spans, has, lookup_table, near_matches, simple_key
from services.rules.document import Document
from services.rules.nodes import BOTH, And, Leaf, Meta, Near, Node, Not, Or, Term
from services.rules.text import starts_any

Test = Callable[[Document], bool]


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

    def _found(self, d: Document) -> "_Found":
        """The article's keys among the vocabulary (made once per article
        and vocabulary)."""
        found = d.memo.get(_FOUND)
        if found is None or found.version is not self._version:
            found = d.memo[_FOUND] = _Found(d, self._vocab, self._version)
        return found

    def _learn(self, index: dict[str, dict]) -> None:
        for table, keys in index.items():
            known = self._vocab.setdefault(table, set())
            if not keys.keys() <= known:
                known.update(keys)
                self._version = object()

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
            for table, key in features:
                keys = index.setdefault(table, {})
                tests = keys.get(key, ())
                if tests is not None:  # None: the key alone decides, no test needed
                    keys[key] = tests + (test,)
        self._learn(index)
        tables = list(index.items())
        found_in = self._found

        def any_of(d: Document) -> bool:
            found = found_in(d)
            waiting = []
            for table, keys in tables:
                hits = found[table]
                if hits:
                    for key in keys.keys() & hits:
                        tests = keys[key]
                        if tests is None:
                            return True
                        waiting += tests
            for test in waiting:
                if test(d):
                    return True
            for test in others:
                if test(d):
                    return True
            return False

        return any_of

    def negation(self, node: Not) -> Test:
        inner = self.compile(node.child)
        return lambda d: not inner(d)

    def near(self, node: Near) -> Test:
        matches = near_matches(node)
        return lambda d: next(matches(d), None) is not None

    def meta(self, node: Meta) -> Test:
        value = node.value
        if node.field == verdicts.FIELD:
            return lambda d: verdicts.holds(d, value)
        if node.field == "source":
            return lambda d: d.source == value
        return lambda d: d.lang == value


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

    __slots__ = ("doc", "vocab", "version")

    def __init__(self, doc: Document, vocab: dict[str, set], version: object):
        super().__init__()
        self.doc = doc
        self.vocab = vocab
        self.version = version

    def __missing__(self, table: str) -> set:
        vocab = self.vocab[table]
        if table in _SHORT_PREFIX_TABLES and len(vocab) <= _FEW_PREFIXES:
            # A few 1-3 letter prefixes: a binary search each in the sorted
            # words (shared with the long prefixes) beats building the
            # article's set of such prefixes.
            words = self.doc.sorted_words
            found = {k for k in vocab if starts_any(words, k)}
        elif table == verdicts.TABLE:  # each verdict worked out when asked (index._keys_in)
            found = set(verdicts.holding(self.doc, vocab))
        else:
            found = self.doc.table(table) & vocab
        self[table] = found
        return found


_SHORT_PREFIX_TABLES = frozenset({"p1", "p2", "p3"})
_FEW_PREFIXES = 16
