"""Rules compiled to yes/no tests over a document's look-up tables: the
Matcher's exact step. Evidence is worked out separately, only when asked for
(`services.rules.compiled`), so deciding a match allocates almost nothing.
What the two share (dispatch, presets, look-ups, NEAR) is in
`services.rules.closures`; what is here is what only a yes/no test can do:
stop at the first branch that decides, and skip branches by their cover.
"""
from __future__ import annotations

from typing import Callable

from services.rules.clauses import PREFIX_KEY, cover
from services.rules.closures import ClosureCompiler, fast_spans, has, key_set, lookup_table, near_matches, present, \
    simple_key
from services.rules.document import Document
from services.rules.nodes import BOTH, And, Leaf, Meta, Near, Node, Not, Or, Term
from services.rules.text import starts_any

Test = Callable[[Document], bool]


class PredicateCompiler(ClosureCompiler[Test]):
    MEMO = "match"

    def __init__(self):
        super().__init__()
        self._covers: dict = {}  # `clauses.cover`'s cache of preset covers

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
        groups, rest = self.plain_groups(node)
        checks = [(table, length, fields, key_set(table, length, keys)) for (table, length, fields), keys in groups.items()]
        others: list[Test] = []
        # The other branches (AND, NEAR... a preset has dozens) filed under
        # their covers: an article is tested only against the branches whose
        # cover it has, as the Matcher does with whole rules.
        gated: dict[str, dict] = {}
        for child in rest:
            test = self.compile(child)
            features = cover(child, self._covers)
            if features is None:
                others.append(test)
                continue
            for table, key in features:
                gated.setdefault(table, {}).setdefault(key, []).append(test)
        if gated:
            def gate(d: Document) -> bool:
                for table, tests in gated.items():
                    for key in d.table(table) & tests.keys():
                        for test in tests[key]:
                            if test(d):
                                return True
                return False

            others.append(gate)

        def any_of(d: Document) -> bool:
            for table, length, fields, keys in checks:
                if length or table != "prefix":
                    if not keys.isdisjoint(lookup_table(d, table, length, fields)):
                        return True
                elif present(d, table, length, fields, keys):
                    return True
            for other in others:
                if other(d):
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
