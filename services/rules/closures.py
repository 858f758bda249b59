"""What the Matcher's two rule compilers share. Both turn a rule tree into
closures over a document's look-up tables: `services.rules.predicate` answers
"does it match?", `services.rules.compiled` "with what evidence?" (and must
agree with `evaluate`).

- One dispatch over the node types: `ClosureCompiler.compile` sends each kind
  of node to one method, which each compiler fills in.
- Presets are compiled once per compiler, and their result is memoised per
  document in `Document.memo` under one key scheme: (the compiler's MEMO tag,
  id of the preset tree).
- Plain leaves (terms, one-word phrases, prefixes) are found by looking their
  key up in a table (`simple_key`, `has`, `word_positions`), not by scanning
  words; an OR's plain leaves are grouped by table (`plain_groups`) so that a
  group costs one set intersection (`key_set`, `present`).
- NEAR looks both sides up before it computes any span (`near_matches`, and
  `near_holds` for a yes/no answer).
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, Sequence, TypeVar

from services.rules.clauses import PREFIX_KEY
from services.rules.document import Document
from services.rules.evaluate import Span, near_spans, spans_meet
from services.rules.nodes import BOTH, And, Leaf, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.text import FieldText, starts_any

Fn = TypeVar("Fn", bound=Callable)
# A plain leaf's look-up: (table, length, key). Tables: "stem", "word",
# "prefix"; prefixes longer than PREFIX_KEY have length 0: they are looked up
# by their first PREFIX_KEY letters, then checked.
SimpleKey = tuple[str, int, str]
# An OR's plain leaves: {(table, length, fields): {key: [leaves]}}.
Groups = dict[tuple[str, int, tuple[str, ...]], dict[str, list[Leaf]]]


class ClosureCompiler(Generic[Fn]):
    """Compiles rule trees to `Fn`s, one method per kind of node."""

    MEMO: str  # this compiler's tag in the keys of `Document.memo`
    # By name, not bound methods kept on the instance: those would make a
    # reference cycle, and the Matcher loads rules with the cyclic GC paused.
    _METHODS = {Term: "leaf", Phrase: "leaf", Prefix: "leaf", And: "all_of", Or: "any_of", Not: "negation",
                Near: "near", Meta: "meta", PresetRef: "preset"}

    def __init__(self):
        # id of a preset tree -> (tree, compiled); keeping the tree alive
        # keeps its id, and so its memo key, unique.
        self._presets: dict[int, tuple[Node, Fn]] = {}

    def compile(self, node: Node) -> Fn:
        name = self._METHODS.get(type(node))
        if name is None:
            raise TypeError(f"not a rule node: {node!r}")
        return getattr(self, name)(node)

    def leaf(self, node: Leaf) -> Fn:
        raise NotImplementedError

    def all_of(self, node: And) -> Fn:
        raise NotImplementedError

    def any_of(self, node: Or) -> Fn:
        raise NotImplementedError

    def negation(self, node: Not) -> Fn:
        raise NotImplementedError

    def near(self, node: Near) -> Fn:
        raise NotImplementedError

    def meta(self, node: Meta) -> Fn:
        raise NotImplementedError

    def preset(self, node: PresetRef) -> Fn:
        """The preset's tree, compiled once; a preset named by many rules is
        worked out once per document (the Matcher clears `doc.memo` for each
        article)."""
        tree = node.rule
        known = self._presets.get(id(tree))
        if known is not None:
            return known[1]
        inner = self.compile(tree)
        key = (self.MEMO, id(tree))

        def preset(d: Document):
            memo = d.memo
            if key not in memo:
                memo[key] = inner(d)
            return memo[key]

        self._presets[id(tree)] = (tree, preset)
        return preset

    @staticmethod
    def plain_groups(node: Or) -> tuple[Groups, list[Node]]:
        """The OR's plain leaves grouped by where they are looked up, and its
        other children."""
        groups: Groups = {}
        others: list[Node] = []
        for child in node.children:
            simple = simple_key(child)
            if simple is None:
                others.append(child)
            else:
                table, length, key = simple
                groups.setdefault((table, length, child.fields), {}).setdefault(key, []).append(child)
        return groups, others


def simple_key(leaf: Node) -> SimpleKey | None:
    """Where a plain leaf is looked up; None for every other node."""
    if isinstance(leaf, Term):
        return ("stem", 0, leaf.stem)
    if isinstance(leaf, Phrase) and len(leaf.words) == 1:
        return ("word", 0, leaf.words[0])
    if isinstance(leaf, Prefix):
        n = len(leaf.prefix)
        return ("prefix", n if n <= PREFIX_KEY else 0, leaf.prefix)
    return None


def word_positions(simple: SimpleKey, field: FieldText) -> Sequence[int]:
    """Positions in `field` of the words a plain leaf matches."""
    table, _, key = simple
    if table == "stem":
        return field.stem_pos.get(key, ())
    if table == "word":
        return field.word_pos.get(key, ())
    return prefix_positions(key, field)


def fast_spans(leaf: Leaf, field: FieldText) -> list[Span]:
    """Occurrences of a leaf in a field via the field's look-up tables."""
    simple = simple_key(leaf)
    if simple is not None:
        return [(i, i) for i in word_positions(simple, field)]
    words = leaf.words
    n = len(words)
    norms, target = field.norms, list(words)
    return [(i, i + n - 1) for i in field.word_pos.get(words[0], ()) if norms[i : i + n] == target]


def prefix_positions(prefix: str, field: FieldText) -> list[int]:
    """Positions of the words starting with `prefix` (a binary search in
    the field's sorted words rules out most prefixes without a scan)."""
    if not starts_any(field.sorted_words, prefix):
        return []
    return [i for i, w in enumerate(field.norms) if w.startswith(prefix)]


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


NearMatch = tuple[str, FieldText, set[Span], set[Span]]


def near_matches(node: Near) -> Callable[[Document], Iterator[NearMatch]]:
    """A function giving, for each field that both sides of `node` read and
    where they meet, (field name, field, occurrences of the left side with a
    partner in range, the same of the right side)."""
    left, right, distance, names, quick = _near_parts(node)

    def matches(d: Document) -> Iterator[NearMatch]:
        for table, length, key in quick:
            if not has(d, table, length, BOTH, key):
                return
        for name in names:
            field = d.fields[name]
            a = fast_spans(left, field)
            if a:
                keep_a, keep_b = near_spans(a, fast_spans(right, field), distance)
                if keep_a:
                    yield name, field, keep_a, keep_b

    return matches


def near_holds(node: Near) -> Callable[[Document], bool]:
    """Whether `near_matches` would give anything: the first pair in range
    decides, without the sets of spans that meet."""
    left, right, distance, names, quick = _near_parts(node)

    def holds(d: Document) -> bool:
        for table, length, key in quick:
            if not has(d, table, length, BOTH, key):
                return False
        for name in names:
            field = d.fields[name]
            a = fast_spans(left, field)
            if a and spans_meet(a, fast_spans(right, field), distance):
                return True
        return False

    return holds


def _near_parts(node: Near) -> tuple[Node, Node, int, list[str], list[SimpleKey]]:
    """(left, right, distance, the fields both sides read, the sides' plain
    look-ups). The look-ups run first: most documents lack one side
    altogether."""
    names = [n for n in node.left.fields if n in node.right.fields]
    quick = [k for k in (simple_key(node.left), simple_key(node.right)) if k is not None]
    return node.left, node.right, node.distance, names, quick
