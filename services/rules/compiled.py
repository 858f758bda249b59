"""Evidence for the Matcher: rules compiled to closures over a document's
look-up tables.

`Compiler().compile(node)` returns `hits(doc) -> list[Hit] | None` with
exactly the meaning of `evaluate.collect_hits` (None: no match). The Matcher
decides matches with `services.rules.predicate` and calls these only when
evidence is asked for. Two things make it fast:
leaves look words up in per-document tables instead of scanning, and the plain
leaves of an OR (terms, one-word phrases, prefixes, typically dozens in a
preset) are tested together with one set intersection per kind.
"""
from __future__ import annotations

from typing import Callable

from services.rules.clauses import PREFIX_KEY
from services.rules.document import Document
from services.rules.evaluate import Hit, Span, near_spans
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.text import FieldText, starts_any

HitsFn = Callable[[Document], "list[Hit] | None"]


def fast_spans(leaf: Term | Phrase | Prefix, field: FieldText) -> list[Span]:
    """Occurrences of a leaf in a field via the field's look-up tables."""
    if isinstance(leaf, Term):
        return [(i, i) for i in field.stem_pos.get(leaf.stem, ())]
    if isinstance(leaf, Prefix):
        return [(i, i) for i in prefix_positions(leaf.prefix, field)]
    words = leaf.words
    n = len(words)
    if n == 1:
        return [(i, i) for i in field.word_pos.get(words[0], ())]
    norms, target = field.norms, list(words)
    return [(i, i + n - 1) for i in field.word_pos.get(words[0], ()) if norms[i : i + n] == target]


def _leaf_hits(leaf: Term | Phrase | Prefix, doc: Document) -> list[Hit]:
    hits: list[Hit] = []
    text = leaf.text
    for name in leaf.fields:
        field = doc.fields[name]
        if isinstance(leaf, Term):
            positions = field.stem_pos.get(leaf.stem)
        elif isinstance(leaf, Prefix):
            positions = prefix_positions(leaf.prefix, field)
        elif len(leaf.words) == 1:
            positions = field.word_pos.get(leaf.words[0])
        else:
            spans = field.spans
            hits += [Hit(text, name, spans[i][0], spans[j][1]) for i, j in fast_spans(leaf, field)]
            continue
        if positions:
            spans = field.spans
            hits += [Hit(text, name, *spans[i]) for i in positions]
    return hits


def prefix_positions(prefix: str, field: FieldText) -> list[int]:
    """Positions of the words starting with `prefix` (a binary search in
    the field's sorted words rules out most prefixes without a scan)."""
    if not starts_any(field.sorted_words, prefix):
        return []
    return [i for i, w in enumerate(field.norms) if w.startswith(prefix)]


# A plain leaf's look-up key and the document table it is looked up in.
def simple_key(leaf: Node):
    """(table name, length, key) for leaves an OR can test by set
    intersection, else None. Prefixes longer than PREFIX_KEY have length 0:
    they are looked up by their first PREFIX_KEY letters, then checked."""
    if isinstance(leaf, Term):
        return ("stem", 0, leaf.stem)
    if isinstance(leaf, Phrase) and len(leaf.words) == 1:
        return ("word", 0, leaf.words[0])
    if isinstance(leaf, Prefix):
        n = len(leaf.prefix)
        return ("prefix", n if n <= PREFIX_KEY else 0, leaf.prefix)
    return None


def lookup_table(doc: Document, table: str, length: int, fields: tuple[str, ...]):
    """The keys present in `doc` for one kind of leaf and field choice
    (prefixes: up to PREFIX_KEY letters)."""
    if len(fields) == 2:
        if table == "stem":
            return doc.stem_set
        if table == "word":
            return doc.word_set
        return doc.prefix_set(length)
    field = doc.fields[fields[0]]
    if table == "stem":
        return field.stem_pos
    if table == "word":
        return field.word_pos
    return field.prefix_set(length)


def key_set(table: str, length: int, keys):
    """The form `present` takes keys in: a frozenset, except for long
    prefixes: {first PREFIX_KEY letters: prefixes}, so a document's 4-letter
    prefixes rule most of them out with one set operation."""
    if length or table != "prefix":
        return frozenset(keys)
    grouped: dict[str, list[str]] = {}
    for k in keys:
        grouped.setdefault(k[:PREFIX_KEY], []).append(k)
    return grouped


def present(doc: Document, table: str, length: int, fields: tuple[str, ...], keys) -> set:
    """Those of `keys` (from `key_set`) found in `doc`."""
    if length or table != "prefix":
        return keys.intersection(lookup_table(doc, table, length, fields))
    gate = lookup_table(doc, "prefix", PREFIX_KEY, fields)
    words = _sorted_words(doc, fields)
    return {k for p in keys.keys() & gate for k in keys[p] if starts_any(words, k)}


def has(doc: Document, table: str, length: int, fields: tuple[str, ...], key: str) -> bool:
    if length or table != "prefix":
        return key in lookup_table(doc, table, length, fields)
    return key[:PREFIX_KEY] in lookup_table(doc, "prefix", PREFIX_KEY, fields) and \
        starts_any(_sorted_words(doc, fields), key)


def _sorted_words(doc: Document, fields: tuple[str, ...]) -> list[str]:
    return doc.sorted_words if len(fields) == 2 else doc.fields[fields[0]].sorted_words


class Compiler:
    """Compiles rules; presets are compiled once and their result memoised
    per document (`doc.memo`, cleared by the Matcher for each article)."""

    def __init__(self):
        # id of the preset tree -> (tree, compiled); keeping the tree alive
        # keeps its id unique.
        self._presets: dict[int, tuple[Node, HitsFn]] = {}

    def compile(self, node: Node) -> HitsFn:
        if isinstance(node, (Term, Phrase, Prefix)):
            return self._leaf(node)
        if isinstance(node, Or):
            return self._or(node)
        if isinstance(node, And):
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
        if isinstance(node, Not):
            inner = self.compile(node.child)
            return lambda d: [] if inner(d) is None else None
        if isinstance(node, Near):
            return self._near(node)
        if isinstance(node, Meta):
            value = node.value
            if node.field == "source":
                return lambda d: [] if d.source == value else None
            return lambda d: [] if d.lang == value else None
        if isinstance(node, PresetRef):
            return self._preset(node)
        raise TypeError(f"not a rule node: {node!r}")

    def _leaf(self, leaf: Term | Phrase | Prefix) -> HitsFn:
        table, length, key = simple_key(leaf) or ("", 0, "")
        if table:
            fields = leaf.fields

            def simple(d: Document):
                if not has(d, table, length, fields, key):
                    return None
                return _leaf_hits(leaf, d)

            return simple
        return lambda d: _leaf_hits(leaf, d) or None

    def _or(self, node: Or) -> HitsFn:
        # Group plain leaves by (table, length, fields): key -> leaves.
        groups: dict[tuple, dict[str, list[Node]]] = {}
        others: list[HitsFn] = []
        for child in node.children:
            simple = simple_key(child)
            if simple is None:
                others.append(self.compile(child))
            else:
                table, length, key = simple
                groups.setdefault((table, length, child.fields), {}).setdefault(key, []).append(child)
        checks = [(table, length, fields, key_set(table, length, leaves), leaves)
                  for (table, length, fields), leaves in groups.items()]

        def any_of(d: Document):
            hits: list[Hit] = []
            matched = False
            for table, length, fields, keys, leaves in checks:
                found = present(d, table, length, fields, keys)
                if found:
                    matched = True
                    for key in found:
                        for leaf in leaves[key]:
                            hits += _leaf_hits(leaf, d)
            for other in others:
                got = other(d)
                if got is not None:
                    matched = True
                    hits += got
            return hits if matched else None

        return any_of

    def _near(self, node: Near) -> HitsFn:
        names = [n for n in node.left.fields if n in node.right.fields]
        left, right, distance = node.left, node.right, node.distance
        # Cheap look-ups first: most documents lack one side altogether.
        quick = [k for k in (simple_key(left), simple_key(right)) if k is not None]

        def near(d: Document):
            for table, length, key in quick:
                if not has(d, table, length, BOTH, key):
                    return None
            hits: list[Hit] = []
            for name in names:
                field = d.fields[name]
                a = fast_spans(left, field)
                if not a:
                    continue
                keep_a, keep_b = near_spans(a, fast_spans(right, field), distance)
                spans = field.spans
                hits += [Hit(left.text, name, spans[i][0], spans[j][1]) for i, j in keep_a]
                hits += [Hit(right.text, name, spans[i][0], spans[j][1]) for i, j in keep_b]
            return hits or None

        return near

    def _preset(self, node: PresetRef) -> HitsFn:
        key = ("h", id(node.rule))
        known = self._presets.get(key[1])
        if known is not None:
            return known[1]
        inner = self.compile(node.rule)

        def preset(d: Document):
            memo = d.memo
            if key not in memo:
                memo[key] = inner(d)
            return memo[key]

        self._presets[key[1]] = (node.rule, preset)
        return preset
