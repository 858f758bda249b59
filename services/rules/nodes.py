"""The parsed form of a rule: a small immutable tree.

Text fields are pushed down to the leaves while parsing, so every leaf knows
which fields it reads (`title:(a OR b)` becomes `title:a OR title:b`).
`render()` gives the canonical, fully parenthesised form that
`tulpar rules check` prints; it parses back to an equal tree.
"""
from __future__ import annotations

from dataclasses import dataclass

TEXT_FIELDS = ("title", "summary")
BOTH: tuple[str, ...] = TEXT_FIELDS


def _field_prefix(fields: tuple[str, ...]) -> str:
    return "" if fields == BOTH else f"{fields[0]}:"


@dataclass(frozen=True, slots=True)
class Term:
    """A bare word, matched by stem. `text` is the word as written."""

    text: str
    norm: str
    stem: str
    fields: tuple[str, ...] = BOTH

    def render(self) -> str:
        return _field_prefix(self.fields) + self.text


@dataclass(frozen=True, slots=True)
class Phrase:
    """Exact normalised words in order. `text` is what stood between the
    quotes (or a bare term that held several words, like `co-op`)."""

    text: str
    words: tuple[str, ...]
    fields: tuple[str, ...] = BOTH

    def render(self) -> str:
        return f'{_field_prefix(self.fields)}"{self.text}"'


@dataclass(frozen=True, slots=True)
class Prefix:
    """Any word starting with `prefix` (normalised). `text` keeps the `*`."""

    text: str
    prefix: str
    fields: tuple[str, ...] = BOTH

    def render(self) -> str:
        return _field_prefix(self.fields) + self.text


Leaf = Term | Phrase | Prefix


@dataclass(frozen=True, slots=True)
class Near:
    left: Leaf
    right: Leaf
    distance: int

    def render(self) -> str:
        return f"({self.left.render()} NEAR/{self.distance} {self.right.render()})"


@dataclass(frozen=True, slots=True)
class Meta:
    """A document attribute equal to a value: `source:` or `lang:`
    (value casefolded)."""

    field: str
    value: str

    def render(self) -> str:
        value = self.value
        if not value or any(c.isspace() or c in '()"' for c in value):
            value = f'"{value}"'
        return f"{self.field}:{value}"


@dataclass(frozen=True, slots=True)
class And:
    children: tuple["Node", ...]

    def render(self) -> str:
        return "(" + " AND ".join(c.render() for c in self.children) + ")"


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple["Node", ...]

    def render(self) -> str:
        return "(" + " OR ".join(c.render() for c in self.children) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    child: "Node"

    def render(self) -> str:
        return f"(NOT {self.child.render()})"


@dataclass(frozen=True, slots=True)
class PresetRef:
    """`topic:NAME` / `country:KZ`, holding the preset's effective rule
    ((query) AND NOT (exclude)) so evaluation needs no lookups."""

    kind: str
    name: str
    rule: "Node"

    def render(self) -> str:
        return f"{self.kind}:{self.name}"


Node = Term | Phrase | Prefix | Near | Meta | And | Or | Not | PresetRef
