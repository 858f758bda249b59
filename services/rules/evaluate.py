"""The reference evaluator and the evidence a match carries.

`evaluate` walks the tree and scans the words of each field: slow, plain and
the definition of what a rule means. The indexed `Matcher` must agree with it
exactly (a property test compares the two).

Meaning of the leaves, per field (title and summary are separate word
sequences, so nothing spans from one into the other):
- Term: a word whose stem equals the term's stem.
- Phrase: consecutive words equal to the phrase's normalised words.
- Prefix: a word that starts with the normalised prefix.
- `a NEAR/n b`: an occurrence of a and an occurrence of b in the same field
  that do not overlap and whose gap is at most n words: the distance between
  words at positions i < j is j - i (neighbours are 1 apart); for a phrase
  the distance counts from its nearer end. Either order.

Evidence: every occurrence of every leaf that contributed to the match: all
matching branches of an OR, all children of an AND, for NEAR the occurrences
that have a partner in range; NOT contributes nothing.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from services.rules import verdicts
from services.rules.document import Document
from services.rules.nodes import And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.text import FieldText

FIELD_ORDER = {"title": 0, "summary": 1}


class Hit(NamedTuple):
    """One matched term or phrase: `term` as written in the rule (a phrase
    without its quotes, a prefix with its `*`), the field, and [start, end)
    character offsets into that field's original text. A named tuple: the
    matcher makes thousands of these per article and a frozen dataclass is
    several times slower to build."""

    term: str
    field: str
    start: int
    end: int

    def sort_key(self) -> tuple:
        return (FIELD_ORDER[self.field], self.start, self.end, self.term)


class Evidence:
    """Why a rule matched: its hits sorted by field (title first), then
    position. A rule can match with no hits (`lang:ru`, `-tariff`).

    The Matcher hands out evidence that is worked out on first use of
    `hits` (most matches are routed and counted, fewer are rendered); its
    value is the same either way, and equality compares the hits."""

    __slots__ = ("_hits", "_compute")

    def __init__(self, hits: tuple[Hit, ...] = (), compute: Callable[[], list[Hit]] | None = None):
        self._hits = None if compute is not None else tuple(hits)
        self._compute = compute

    @classmethod
    def of(cls, hits) -> "Evidence":
        """Evidence from hits in any order, possibly repeated."""
        return cls(_canonical(hits))

    @classmethod
    def lazy(cls, compute: Callable[[], list[Hit]]) -> "Evidence":
        # Made hundreds of times per article: skip __init__'s checks.
        evidence = cls.__new__(cls)
        evidence._hits = None
        evidence._compute = compute
        return evidence

    @property
    def hits(self) -> tuple[Hit, ...]:
        if self._hits is None:
            self._hits = _canonical(self._compute())
            self._compute = None
        return self._hits

    def terms(self) -> list[str]:
        """Distinct matched terms in the order they first appear in the
        article (title before summary)."""
        return list(dict.fromkeys(h.term for h in self.hits))

    def __eq__(self, other) -> bool:
        return isinstance(other, Evidence) and self.hits == other.hits

    def __hash__(self) -> int:
        return hash(self.hits)

    def __repr__(self) -> str:
        return f"Evidence(hits={self.hits!r})"


def _canonical(hits) -> tuple[Hit, ...]:
    if len(hits) > 1:
        return tuple(sorted(set(hits), key=Hit.sort_key))
    return tuple(hits)


Span = tuple[int, int]  # first and last word position, inclusive


def evaluate(rule: Node, doc: Document) -> Evidence | None:
    """Evidence if `rule` matches `doc`, else None (reference semantics)."""
    hits = collect_hits(rule, doc)
    return None if hits is None else Evidence.of(hits)


def leaf_spans(leaf: Term | Phrase | Prefix, field: FieldText) -> list[Span]:
    """Occurrences of a leaf in one field, by scanning its words."""
    if isinstance(leaf, Term):
        return [(i, i) for i, s in enumerate(field.stems) if s == leaf.stem]
    if isinstance(leaf, Prefix):
        return [(i, i) for i, w in enumerate(field.norms) if w.startswith(leaf.prefix)]
    words, n = list(leaf.words), len(leaf.words)
    norms = field.norms
    return [(i, i + n - 1) for i in range(len(norms) - n + 1) if norms[i : i + n] == words]


def near_spans(left: list[Span], right: list[Span], distance: int) -> tuple[set[Span], set[Span]]:
    """The occurrences on each side that have a partner within `distance`."""
    keep_left: set[Span] = set()
    keep_right: set[Span] = set()
    for a in left:
        for b in right:
            if a[1] < b[0]:
                gap = b[0] - a[1]
            elif b[1] < a[0]:
                gap = a[0] - b[1]
            else:
                continue  # overlapping occurrences are the same words
            if gap <= distance:
                keep_left.add(a)
                keep_right.add(b)
    return keep_left, keep_right


def spans_meet(left: list[Span], right: list[Span], distance: int) -> bool:
    """Whether `near_spans` would keep any pair: the same gap rule, stopping
    at the first pair in range (a yes/no test needs no more)."""
    for a0, a1 in left:
        for b0, b1 in right:
            if a1 < b0:
                if b0 - a1 <= distance:
                    return True
            elif b1 < a0 and a0 - b1 <= distance:
                return True
    return False


def to_hits(term: str, name: str, field: FieldText, spans) -> list[Hit]:
    return [Hit(term, name, field.spans[i][0], field.spans[j][1]) for i, j in spans]


def collect_hits(node: Node, doc: Document) -> list[Hit] | None:
    """Hits of a matching rule, None if it does not match."""
    if isinstance(node, (Term, Phrase, Prefix)):
        hits: list[Hit] = []
        for name in node.fields:
            field = doc.fields[name]
            hits += to_hits(node.text, name, field, leaf_spans(node, field))
        return hits or None
    if isinstance(node, And):
        hits = []
        for child in node.children:
            got = collect_hits(child, doc)
            if got is None:
                return None
            hits += got
        return hits
    if isinstance(node, Or):
        found = [got for child in node.children if (got := collect_hits(child, doc)) is not None]
        return [h for got in found for h in got] if found else None
    if isinstance(node, Not):
        return [] if collect_hits(node.child, doc) is None else None
    if isinstance(node, Near):
        hits = []
        for name in node.left.fields:
            if name not in node.right.fields:
                continue
            field = doc.fields[name]
            left, right = near_spans(leaf_spans(node.left, field), leaf_spans(node.right, field), node.distance)
            hits += to_hits(node.left.text, name, field, left)
            hits += to_hits(node.right.text, name, field, right)
        return hits or None
    if isinstance(node, Meta):
        if node.field == verdicts.FIELD:
            if not verdicts.holds(doc, node.value):
                return None
            return verdicts.hits(doc, node.value)
        actual = doc.source if node.field == "source" else doc.lang
        return [] if actual == node.value else None
    if isinstance(node, PresetRef):
        return collect_hits(node.rule, doc)
    raise TypeError(f"not a rule node: {node!r}")
