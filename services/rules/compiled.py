"""Evidence for the Matcher: rules compiled to closures over a document's
look-up tables.

`EvidenceCompiler().compile(node)` returns `hits(doc) -> list[Hit] | None`
with exactly the meaning of `evaluate.collect_hits` (None: no match). The
Matcher decides matches with `services.rules.predicate` and calls these only
when evidence is asked for. What the two share (dispatch, presets, look-ups,
NEAR) is in `services.rules.closures`; what is here is what evidence needs:
every matching branch is followed, and each occurrence becomes a `Hit`.
"""
from __future__ import annotations

from typing import Callable

from services.rules import verdicts
from services.rules.closures import ClosureCompiler, SimpleKey, fast_spans, has, key_set, near_matches, present, \
    simple_key, word_positions
from services.rules.document import Document
from services.rules.evaluate import Hit
from services.rules.nodes import And, Leaf, Meta, Near, Not, Or

HitsFn = Callable[[Document], "list[Hit] | None"]


class EvidenceCompiler(ClosureCompiler[HitsFn]):
    MEMO = "hits"

    def leaf(self, leaf: Leaf) -> HitsFn:
        simple = simple_key(leaf)
        if simple is None:
            return lambda d: _leaf_hits(leaf, None, d) or None
        table, length, key = simple
        fields = leaf.fields

        def plain(d: Document):
            if not has(d, table, length, fields, key):
                return None
            return _leaf_hits(leaf, simple, d)

        return plain

    def all_of(self, node: And) -> HitsFn:
        parts = [self.compile(c) for c in node.children]

        def all_of(d: Document):
            hits: list[Hit] = []
            for part in parts:
                got = part(d)
                if got is None:
                    return None
                hits += got
            return hits

        return all_of

    def any_of(self, node: Or) -> HitsFn:
        groups, rest = self.plain_groups(node)
        checks = [(table, length, fields, key_set(table, length, leaves), leaves)
                  for (table, length, fields), leaves in groups.items()]
        others = [self.compile(child) for child in rest]

        def any_of(d: Document):
            hits: list[Hit] = []
            matched = False
            for table, length, fields, keys, leaves in checks:
                found = present(d, table, length, fields, keys)
                if found:
                    matched = True
                    for key in found:
                        for leaf in leaves[key]:
                            hits += _leaf_hits(leaf, (table, length, key), d)
            for other in others:
                got = other(d)
                if got is not None:
                    matched = True
                    hits += got
            return hits if matched else None

        return any_of

    def negation(self, node: Not) -> HitsFn:
        inner = self.compile(node.child)
        return lambda d: [] if inner(d) is None else None

    def near(self, node: Near) -> HitsFn:
        matches = near_matches(node)
        left, right = node.left.text, node.right.text

        def near(d: Document):
            hits: list[Hit] = []
            for name, field, keep_left, keep_right in matches(d):
                spans = field.spans
                hits += [Hit(left, name, spans[i][0], spans[j][1]) for i, j in keep_left]
                hits += [Hit(right, name, spans[i][0], spans[j][1]) for i, j in keep_right]
            return hits or None

        return near

    def meta(self, node: Meta) -> HitsFn:
        value = node.value
        if node.field == verdicts.FIELD:
            def verdict(d: Document):
                if not verdicts.holds(d, value):
                    return None
                return verdicts.hits(d, value)
            return verdict
        if node.field == "source":
            return lambda d: [] if d.source == value else None
        return lambda d: [] if d.lang == value else None


def _leaf_hits(leaf: Leaf, simple: SimpleKey | None, doc: Document) -> list[Hit]:
    """Every occurrence of `leaf` in `doc` (`simple`: its `simple_key`)."""
    hits: list[Hit] = []
    text = leaf.text
    for name in leaf.fields:
        field = doc.fields[name]
        if simple is None:  # a phrase of several words
            spans = field.spans
            hits += [Hit(text, name, spans[i][0], spans[j][1]) for i, j in fast_spans(leaf, field)]
            continue
        positions = word_positions(simple, field)
        if positions:
            spans = field.spans
            hits += [Hit(text, name, *spans[i]) for i in positions]
    return hits
