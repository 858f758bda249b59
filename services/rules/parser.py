"""Recursive-descent parser: query text -> `nodes` tree.

    or_expr   := and_expr (OR and_expr)*
    and_expr  := unary ((AND)? unary)*        adjacent items are ANDed
    unary     := (NOT | -) unary | near
    near      := primary (NEAR/n primary)?    both sides: term, prefix or phrase
    primary   := ( or_expr ) | FIELD primary | TERM | "PHRASE" | PREFIX* | name:value
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Protocol

from services.countries import CODES
from services.rules.errors import RuleError
from services.rules.lexer import ITEM_START, Token, tokenize
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
    return _Parser(query, presets).parse()


class _Parser:
    def __init__(self, query: str, presets: PresetSource):
        self.query = query
        self.tokens = tokenize(query)
        self.pos = 0
        self.presets = presets
        self.fields: tuple[str, ...] = BOTH
        self.depth = 0

    # -- token helpers -------------------------------------------------
    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise RuleError("empty query", 1)
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            # or_expr stops only at a token that cannot continue it.
            if tok.kind == "RP":
                raise RuleError("unbalanced parenthesis", tok.column)
            raise RuleError(f"unexpected {tok.text}", tok.column)
        return node

    # -- grammar -------------------------------------------------------
    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            self._need_item_after(tok)
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def and_expr(self) -> Node:
        children = [self.unary()]
        while (tok := self.peek()) is not None:
            if tok.kind == "AND":
                self.take()
                self._need_item_after(tok)
            elif tok.kind not in ITEM_START:
                break
            children.append(self.unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind in ("NOT", "NEG"):
            self.take()
            self._need_item_after(tok)
            with self._nested(tok):
                return Not(self.unary())
        return self.near()

    def near(self) -> Node:
        left_tok = self.peek()
        left = self.primary()
        tok = self.peek()
        if tok is None or tok.kind != "NEAR":
            return left
        self.take()
        if not isinstance(left, (Term, Phrase, Prefix)):
            raise RuleError("NEAR joins a term, prefix or phrase on each side", left_tok.column)
        right_tok = self.peek()
        if right_tok is None or right_tok.kind not in ("FIELD", "TERM", "PHRASE", "PREFIX", "LP", "VALUE"):
            raise RuleError("NEAR without a term after it", tok.column)
        right = self.primary()
        if not isinstance(right, (Term, Phrase, Prefix)):
            raise RuleError("NEAR joins a term, prefix or phrase on each side", right_tok.column)
        again = self.peek()
        if again is not None and again.kind == "NEAR":
            raise RuleError("NEAR cannot be chained; join pairs with AND", again.column)
        return Near(left, right, tok.distance)

    def primary(self) -> Node:
        tok = self.peek()
        if tok is None:  # guarded by _need_item_after; kept for safety
            raise RuleError("unexpected end of query", len(self.query) + 1)
        kind = tok.kind
        if kind in ("AND", "OR", "NEAR"):
            raise RuleError(f"{tok.text.split('/')[0]} without a term before it", tok.column)
        if kind == "RP":
            raise RuleError("unbalanced parenthesis", tok.column)
        self.take()
        if kind == "LP":
            closing = self.peek()
            if closing is not None and closing.kind == "RP":
                raise RuleError("empty parentheses", tok.column)
            if closing is None:
                raise RuleError("unbalanced parenthesis", tok.column)
            with self._nested(tok):
                node = self.or_expr()
            closing = self.peek()
            if closing is None or closing.kind != "RP":
                raise RuleError("unbalanced parenthesis", tok.column)
            self.take()
            return node
        if kind == "FIELD":
            target = self.peek()
            if target is None or target.kind not in ("LP", "TERM", "PHRASE", "PREFIX"):
                raise RuleError(f"{tok.text}: applies to a term, phrase, prefix or group", tok.column)
            outer, self.fields = self.fields, (tok.text,)
            try:
                return self.primary()
            finally:
                self.fields = outer
        if kind == "TERM":
            return self.term(tok)
        if kind == "PHRASE":
            words = tuple(split_words(tok.text))
            if not words:
                raise RuleError("empty phrase", tok.column)
            return Phrase(tok.text, words, self.fields)
        if kind == "PREFIX":
            words = split_words(tok.text[:-1])
            if len(words) != 1:
                raise RuleError("a prefix must be one word of letters or digits, like uran*", tok.column)
            return Prefix(tok.text, words[0], self.fields)
        if kind == "VALUE":
            return self.value(tok)
        raise RuleError(f"unexpected {tok.text}", tok.column)  # pragma: no cover

    def term(self, tok: Token) -> Node:
        forms = split_forms(tok.text)
        if not forms:
            raise RuleError(f"'{tok.text}' has no letters or digits", tok.column)
        if len(forms) > 1:
            # `co-op`, `u.s.`: punctuation splits words, so the term reads as
            # the phrase of its words.
            return Phrase(tok.text, tuple(norm for norm, _ in forms), self.fields)
        return Term(tok.text, forms[0][0], forms[0][1], self.fields)

    def value(self, tok: Token) -> Node:
        field, value = tok.field, tok.text
        if field == "source":
            return Meta("source", value.strip().casefold())
        if field == "lang":
            return Meta("lang", primary_language(value))
        if field == "country":
            code = value.upper()
            if code not in CODES:
                raise RuleError(f"unknown country '{value}' (one of {', '.join(CODES)})", tok.column)
            return self.preset("country", code, tok)
        return self.preset("topic", value.lower(), tok)

    def preset(self, kind: str, name: str, tok: Token) -> Node:
        rule = self.presets.resolve(kind, name)
        if rule is None:
            raise RuleError(f"unknown {kind} '{name}'", tok.column)
        return PresetRef(kind, name, rule)

    @contextmanager
    def _nested(self, tok: Token):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"nested more than {MAX_DEPTH} levels deep", tok.column)
        try:
            yield
        finally:
            self.depth -= 1

    def _need_item_after(self, tok: Token) -> None:
        nxt = self.peek()
        if nxt is None or nxt.kind not in ITEM_START:
            name = "-" if tok.kind == "NEG" else tok.text
            raise RuleError(f"{name} without a term after it", tok.column)


def primary_language(value: str) -> str:
    """`ru-RU`, `RU`, `ru_ru` -> `ru`."""
    return value.strip().replace("_", "-").split("-")[0].casefold()
