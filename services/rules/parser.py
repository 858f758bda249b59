"""Recursive-descent parser: query text -> `nodes` tree.

    or_expr   := and_expr (OR and_expr)*
    and_expr  := unary ((AND)? unary)*        adjacent items are ANDed
    unary     := (NOT | -) unary | near
    near      := primary (NEAR/n primary)?    both sides: term, prefix or phrase
    primary   := ( or_expr ) | FIELD primary | TERM | "PHRASE" | PREFIX* | name:value
"""
from __future__ import annotations

import re
from typing import Protocol

from services.countries import CODES
from services.rules.errors import RuleError
from services.rules.lexer import ITEM_START, scan
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.text import split_forms, split_words

# Deeper nesting than any real rule; refusing it keeps the recursive parser
# and evaluators far from Python's recursion limit.
MAX_DEPTH = 50


class PresetSource(Protocol):
    """Where `topic:NAME` and `country:CODE` are looked up: the preset's
    parsed rule, or None when there is no such preset."""

    def resolve(self, kind: str, name: str) -> Node | None: ...


def parse(query: str, presets: PresetSource) -> Node:
    """Parse `query`; raise `RuleError` with a 1-based column if invalid.

    `topic:` and `country:` are looked up in `presets`. The parser knows no
    preset files (services/rules/presets.py reads them and parses them with
    this): `services.rules.parse` is this with the bundled presets as the
    default."""
    if _NOT_PLAIN.search(query) is None:
        node = _plain(query)
        if node is not None:
            return node
    return _Parser(query, presets).parse()


# A character that makes a query more than bare words and ORs: a group, a
# phrase, a field, a prefix or a `-` starting a word.
_NOT_PLAIN = re.compile(r'[()":*]|(?<!\S)-')


def _plain(query: str) -> Node | None:
    """The tree of a query of bare words and ORs (`a b OR c`), as the parser
    gives it; None for anything else, or an error (the parser then says
    what is wrong, where)."""
    groups, words = [], []
    for word in query.split():  # str.split() splits at exactly what the lexer takes as space
        if word == "OR":
            if not words:
                return None
            groups.append(words)
            words = []
        elif word == "AND" or word == "NOT" or (word.startswith("NEAR") and (len(word) == 4 or word[4] == "/")):
            return None
        else:
            node = _LEAVES.get(("TERM", word, BOTH))
            if node is None:
                try:
                    node = _leaf("TERM", word, BOTH, 1)
                except RuleError:
                    return None
            words.append(node)
    if not words:
        return None
    groups.append(words)
    items = [group[0] if len(group) == 1 else And(tuple(group)) for group in groups]
    return items[0] if len(items) == 1 else Or(tuple(items))


# Leaves by (kind, text as written, fields): a rules file repeats its words
# and phrases, and a leaf depends on nothing else (nodes are immutable, so
# rules can share them). Bounded, like text.py's word cache.
_LEAVES: dict[tuple, Node] = {}
_LEAVES_LIMIT = 500_000


class _Parser:
    """Tokens are (kind, text, column, distance, field) tuples
    (lexer.scan); `kinds` is their kinds with None after the last, so
    looking ahead needs no bounds check."""

    __slots__ = ("query", "tokens", "kinds", "pos", "presets", "fields", "depth")

    def __init__(self, query: str, presets: PresetSource):
        self.query = query
        self.tokens = tokens = scan(query)
        self.kinds = [t[0] for t in tokens]
        self.kinds.append(None)
        self.pos = 0
        self.presets = presets
        self.fields: tuple[str, ...] = BOTH
        self.depth = 0

    def parse(self) -> Node:
        if not self.tokens:
            raise RuleError("empty query", 1)
        node = self.or_expr()
        kind = self.kinds[self.pos]
        if kind is not None:
            tok = self.tokens[self.pos]
            # or_expr stops only at a token that cannot continue it.
            if kind == "RP":
                raise RuleError("unbalanced parenthesis", tok[2])
            raise RuleError(f"unexpected {tok[1]}", tok[2])
        return node

    # -- grammar -------------------------------------------------------
    def or_expr(self) -> Node:
        node = self.and_expr()
        kinds = self.kinds
        if kinds[self.pos] != "OR":
            return node
        children = [node]
        while kinds[self.pos] == "OR":
            tok = self.tokens[self.pos]
            self.pos += 1
            self._need_item_after(tok)
            children.append(self.and_expr())
        return Or(tuple(children))

    def and_expr(self) -> Node:
        node = self.unary()
        kinds = self.kinds
        kind = kinds[self.pos]
        if kind != "AND" and kind not in ITEM_START:
            return node
        children = [node]
        while True:
            if kind == "AND":
                tok = self.tokens[self.pos]
                self.pos += 1
                self._need_item_after(tok)
            elif kind not in ITEM_START:
                break
            children.append(self.unary())
            kind = kinds[self.pos]
        return And(tuple(children))

    def unary(self) -> Node:
        kind = self.kinds[self.pos]
        if kind == "NOT" or kind == "NEG":
            tok = self.tokens[self.pos]
            self.pos += 1
            self._need_item_after(tok)
            self._enter(tok)
            node = Not(self.unary())
            self.depth -= 1
            return node
        return self.near()

    def near(self) -> Node:
        left_at = self.pos
        left = self.primary()
        kinds = self.kinds
        if kinds[self.pos] != "NEAR":
            return left
        tok = self.tokens[self.pos]
        self.pos += 1
        lefts = near_sides(left)
        if lefts is None:
            raise RuleError(NEAR_SIDES_ERROR, self.tokens[left_at][2])
        right_at = self.pos
        if kinds[right_at] not in _NEAR_RIGHT:
            raise RuleError("NEAR without a term after it", tok[2])
        right = self.primary()
        rights = near_sides(right)
        if rights is None:
            raise RuleError(NEAR_SIDES_ERROR, self.tokens[right_at][2])
        if kinds[self.pos] == "NEAR":
            raise RuleError("NEAR cannot be chained; join pairs with AND", self.tokens[self.pos][2])
        return near_pairs(lefts, rights, tok[3], tok[2])

    def primary(self) -> Node:
        kind = self.kinds[self.pos]
        if kind is None:  # guarded by _need_item_after; kept for safety
            raise RuleError("unexpected end of query", len(self.query) + 1)
        tok = self.tokens[self.pos]
        if kind == "TERM" or kind == "PHRASE" or kind == "PREFIX":
            self.pos += 1
            node = _LEAVES.get((kind, tok[1], self.fields))
            return _leaf(kind, tok[1], self.fields, tok[2]) if node is None else node
        if kind in ("AND", "OR", "NEAR"):
            raise RuleError(f"{tok[1].split('/')[0]} without a term before it", tok[2])
        if kind == "RP":
            raise RuleError("unbalanced parenthesis", tok[2])
        self.pos += 1
        if kind == "LP":
            closing = self.kinds[self.pos]
            if closing == "RP":
                raise RuleError("empty parentheses", tok[2])
            if closing is None:
                raise RuleError("unbalanced parenthesis", tok[2])
            self._enter(tok)
            node = self.or_expr()
            self.depth -= 1
            if self.kinds[self.pos] != "RP":
                raise RuleError("unbalanced parenthesis", tok[2])
            self.pos += 1
            return node
        if kind == "FIELD":
            if self.kinds[self.pos] not in _FIELD_TARGETS:
                raise RuleError(f"{tok[1]}: applies to a term, phrase, prefix or group", tok[2])
            outer, self.fields = self.fields, (tok[1],)
            node = self.primary()
            self.fields = outer
            return node
        if kind == "VALUE":
            return self.value(tok)
        raise RuleError(f"unexpected {tok[1]}", tok[2])  # pragma: no cover

    def value(self, tok: tuple) -> Node:
        field, value = tok[4], tok[1]
        if field == "source":
            return Meta("source", value.strip().casefold())
        if field == "lang":
            return Meta("lang", primary_language(value))
        if field == "country":
            code = value.upper()
            if code not in CODES:
                raise RuleError(f"unknown country '{value}' (one of {', '.join(CODES)})", tok[2])
            return self.preset("country", code, tok)
        return self.preset("topic", value.lower(), tok)

    def preset(self, kind: str, name: str, tok: tuple) -> Node:
        rule = self.presets.resolve(kind, name)
        if rule is None:
            raise RuleError(f"unknown {kind} '{name}'", tok[2])
        return PresetRef(kind, name, rule)

    def _enter(self, tok: tuple) -> None:
        """One level deeper (a NOT or a group); the caller steps back out.
        An error abandons the parse, so no step back is needed then."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"nested more than {MAX_DEPTH} levels deep", tok[2])

    def _need_item_after(self, tok: tuple) -> None:
        if self.kinds[self.pos] not in ITEM_START:
            name = "-" if tok[0] == "NEG" else tok[1]
            raise RuleError(f"{name} without a term after it", tok[2])


def _leaf(kind: str, text: str, fields: tuple[str, ...], column: int) -> Node:
    """A term, phrase or prefix as written, read in `fields`; kept in _LEAVES."""
    if kind == "TERM":
        forms = split_forms(text)
        if not forms:
            raise RuleError(f"'{text}' has no letters or digits", column)
        if len(forms) > 1:
            # `co-op`, `u.s.`: punctuation splits words, so the term reads as
            # the phrase of its words.
            node = Phrase(text, tuple(norm for norm, _ in forms), fields)
        else:
            node = Term(text, forms[0][0], forms[0][1], fields)
    elif kind == "PHRASE":
        words = tuple(split_words(text))
        if not words:
            raise RuleError("empty phrase", column)
        node = Phrase(text, words, fields)
    else:
        words = split_words(text[:-1])
        if len(words) != 1:
            raise RuleError("a prefix must be one word of letters or digits, like uran*", column)
        node = Prefix(text, words[0], fields)
    if len(_LEAVES) >= _LEAVES_LIMIT:
        _LEAVES.clear()
    _LEAVES[(kind, text, fields)] = node
    return node


_NEAR_SIDES = frozenset({Term, Phrase, Prefix})
_NEAR_RIGHT = frozenset({"FIELD", "TERM", "PHRASE", "PREFIX", "LP", "VALUE"})
_FIELD_TARGETS = frozenset({"LP", "TERM", "PHRASE", "PREFIX"})
NEAR_SIDES_ERROR = "NEAR joins a term, prefix or phrase, or an OR of those, on each side"
MAX_NEAR_PAIRS = 64


def near_sides(node: Node) -> tuple[Node, ...] | None:
    """The leaves a NEAR side stands for: the term, prefix or phrase itself,
    or every one of an OR of them (nested ORs too); None for anything else."""
    if node.__class__ in _NEAR_SIDES:
        return (node,)
    if node.__class__ is Or:
        found: list[Node] = []
        for child in node.children:
            sides = near_sides(child)
            if sides is None:
                return None
            found += sides
        return tuple(found)
    return None


def near_pairs(lefts: tuple[Node, ...], rights: tuple[Node, ...], distance: int, column: int) -> Node:
    """`(a OR b) NEAR/n (c OR d)` means some pair is near: the OR of
    `a NEAR/n c`, `a NEAR/n d`, ... (a Near node joins two leaves, which
    every evaluator and the index's checks rely on). Bounded, since the
    pairs multiply."""
    if len(lefts) * len(rights) > MAX_NEAR_PAIRS:
        raise RuleError(f"NEAR over OR groups makes {len(lefts) * len(rights)} pairs, at most {MAX_NEAR_PAIRS}: "
                        "split the rule with OR", column)
    pairs = tuple(Near(a, b, distance) for a in lefts for b in rights)
    return pairs[0] if len(pairs) == 1 else Or(pairs)


def primary_language(value: str) -> str:
    """`ru-RU`, `RU`, `ru_ru` -> `ru`."""
    return value.strip().replace("_", "-").split("-")[0].casefold()
