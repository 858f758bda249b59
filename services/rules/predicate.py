"""Rules compiled to yes/no tests over a document's look-up tables: the
Matcher's exact step. Evidence is worked out separately, only when asked for
(`services.rules.compiled`), so deciding a match allocates almost nothing.

The plain leaves of an OR (terms, one-word phrases, prefixes: typically
dozens in a preset) are tested together, one set intersection per kind.
"""
from __future__ import annotations

from typing import Callable

from services.rules.clauses import PREFIX_KEY, cover
from services.rules.compiled import fast_spans, has, key_set, lookup_table, present, simple_key
from services.rules.document import Document
from services.rules.evaluate import near_spans
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.text import starts_any

Test = Callable[[Document], bool]


class PredicateCompiler:
    def __init__(self):
        # id of a preset tree -> (tree, test); the tree is kept so its id
        # stays unique. Results are memoised per document under ("t", id).
        self._presets: dict[int, tuple[Node, Test]] = {}
        self._covers: dict = {}  # `clauses.cover`'s cache of preset covers

    def compile(self, node: Node) -> Test:
        if isinstance(node, (Term, Phrase, Prefix)):
            return self._leaf(node)
        if isinstance(node, Or):
            return self._or(node)
        if isinstance(node, And):
            flat = _stem_conjunction(node)
            if flat is not None:
                required, forbidden = flat
                return lambda d: required <= d.stem_set and forbidden.isdisjoint(d.stem_set)
            tests = [self.compile(c) for c in node.children]
            if len(tests) == 2:
                a, b = tests
                return lambda d: a(d) and b(d)
            return lambda d: all(t(d) for t in tests)
        if isinstance(node, Not):
            inner = self.compile(node.child)
            return lambda d: not inner(d)
        if isinstance(node, Near):
            return self._near(node)
        if isinstance(node, Meta):
            value = node.value
            if node.field == "source":
                return lambda d: d.source == value
            return lambda d: d.lang == value
        if isinstance(node, PresetRef):
            return self._preset(node)
        raise TypeError(f"not a rule node: {node!r}")

    def _leaf(self, leaf: Term | Phrase | Prefix) -> Test:
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

    def _or(self, node: Or) -> Test:
        groups: dict[tuple, set[str]] = {}
        others: list[Test] = []
        # The other branches (AND, NEAR... a preset has dozens) filed under
        # their covers: an article is tested only against the branches whose
        # cover it has, as the Matcher does with whole rules.
        gated: dict[str, dict] = {}
        for child in node.children:
            simple = simple_key(child)
            if simple is not None:
                table, length, key = simple
                groups.setdefault((table, length, child.fields), set()).add(key)
                continue
            test = self.compile(child)
            features = cover(child, self._covers)
            if features is None:
                others.append(test)
                continue
            for table, key in features:
                gated.setdefault(table, {}).setdefault(key, []).append(test)
        checks = [(table, length, fields, key_set(table, length, keys)) for (table, length, fields), keys in groups.items()]
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

    def _near(self, node: Near) -> Test:
        names = [n for n in node.left.fields if n in node.right.fields]
        left, right, distance = node.left, node.right, node.distance
        # Cheap look-ups first: most documents lack one side altogether.
        quick = [k for k in (simple_key(left), simple_key(right)) if k is not None]

        def near(d: Document) -> bool:
            for table, length, key in quick:
                if not has(d, table, length, BOTH, key):
                    return False
            for name in names:
                field = d.fields[name]
                a = fast_spans(left, field)
                if a and near_spans(a, fast_spans(right, field), distance)[0]:
                    return True
            return False

        return near

    def _preset(self, node: PresetRef) -> Test:
        key = ("t", id(node.rule))
        known = self._presets.get(key[1])
        if known is not None:
            return known[1]
        inner = self.compile(node.rule)

        def preset(d: Document) -> bool:
            memo = d.memo
            if key not in memo:
                memo[key] = inner(d)
            return memo[key]

        self._presets[key[1]] = (node.rule, preset)
        return preset


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
