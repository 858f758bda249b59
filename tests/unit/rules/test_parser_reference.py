"""The parser and lexer as they were before issue 11 made them faster (the
contract): services/rules/parser.py must give the same tree, or the same
error at the same column, for any query. This file is that old code,
unchanged but for its name and one later change to the language (a NEAR side
may be an OR of terms, prefixes or phrases: round 12), and the tests that
compare the two."""
from __future__ import annotations

import random
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.countries import CODES
from services.rules import RuleError, load_presets
from services.rules import parser
from services.rules.nodes import BOTH, And, Meta, Near, Node, Not, Or, Phrase, Prefix, PresetRef, Term
from services.rules.text import split_forms, split_words

PRESETS = load_presets(Path(__file__).resolve().parents[2] / "data" / "presets")


# -- the old lexer (services/rules/lexer.py) -----------------------------------
TEXT_FIELD_NAMES = ("title", "summary")
VALUE_FIELD_NAMES = ("source", "lang", "country", "topic")
MAX_NEAR = 1000

_FIELD_RE = re.compile(r"([A-Za-z]+):")
_CHUNK_RE = re.compile(r'[^\s()"]*')


NEAR_SIDES = "NEAR joins a term, prefix or phrase, or an OR of those, on each side"


def _leaves_of(node: Node) -> list[Node] | None:
    """Round 12 of issue 11: a NEAR side may be an OR of leaves (the pairs are ORed)."""
    if isinstance(node, (Term, Phrase, Prefix)):
        return [node]
    if isinstance(node, Or):
        out: list[Node] = []
        for child in node.children:
            more = _leaves_of(child)
            if more is None:
                return None
            out.extend(more)
        return out
    return None


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # LP RP AND OR NOT NEG NEAR FIELD TERM PHRASE PREFIX VALUE
    text: str  # as written (for VALUE: the value; for FIELD: the field name)
    column: int
    distance: int = 0  # NEAR only
    field: str = ""  # VALUE only: source, lang, country or topic


ITEM_START = frozenset({"LP", "NOT", "NEG", "FIELD", "TERM", "PHRASE", "PREFIX", "VALUE"})


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        col = i + 1
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(Token("LP", ch, col))
            i += 1
        elif ch == ")":
            tokens.append(Token("RP", ch, col))
            i += 1
        elif ch == '"':
            text, i = _quoted(query, i)
            tokens.append(Token("PHRASE", text, col))
        elif ch == "-":
            nxt = query[i + 1] if i + 1 < n else ""
            if not nxt or nxt.isspace() or nxt == ")":
                raise RuleError("'-' needs a term, phrase or group right after it", col)
            tokens.append(Token("NEG", ch, col))
            i += 1
        else:
            i = _chunk(query, i, tokens)
    return tokens


def _quoted(query: str, i: int) -> tuple[str, int]:
    end = query.find('"', i + 1)
    if end < 0:
        raise RuleError("unbalanced quote", i + 1)
    return query[i + 1 : end], end + 1


def _chunk(query: str, i: int, tokens: list[Token]) -> int:
    """A run of characters up to whitespace, a parenthesis or a quote: an
    operator, a field prefix, a term or a prefix."""
    start = i
    col = start + 1
    field = _FIELD_RE.match(query, i)
    if field:
        name = field.group(1).lower()
        after = field.end()
        if name in TEXT_FIELD_NAMES:
            tokens.append(Token("FIELD", name, col))
            return after
        if name in VALUE_FIELD_NAMES:
            if query[after : after + 1] == '"':
                value, end = _quoted(query, after)
            else:
                end = _CHUNK_RE.match(query, after).end()
                value = query[after:end]
            if not value.strip():
                raise RuleError(f"{name}: needs a value", col)
            tokens.append(Token("VALUE", value, col, field=name))
            return end
        raise RuleError(f"unknown field '{field.group(1)}' (known: title, summary, source, lang, country, topic)", col)
    i = _CHUNK_RE.match(query, i).end()
    text = query[start:i]
    if text in ("AND", "OR", "NOT"):
        tokens.append(Token(text, text, col))
    elif text == "NEAR" or text.startswith("NEAR/"):
        digits = text[5:]
        if not (digits.isascii() and digits.isdigit()):
            raise RuleError("NEAR needs a distance, like NEAR/5", col)
        distance = int(digits)
        if not 1 <= distance <= MAX_NEAR:
            raise RuleError(f"NEAR distance must be between 1 and {MAX_NEAR}", col)
        tokens.append(Token("NEAR", text, col, distance=distance))
    elif "*" in text:
        if text.index("*") != len(text) - 1:
            raise RuleError("'*' may only end a prefix, like uran*", col + text.index("*"))
        tokens.append(Token("PREFIX", text, col))
    else:
        tokens.append(Token("TERM", text, col))
    return i


# -- the old parser (services/rules/parser.py) ---------------------------------
# Deeper nesting than any real rule; refusing it keeps the recursive parser
# and evaluators far from Python's recursion limit.
MAX_DEPTH = 50


class PresetSource(Protocol):
    """Where `topic:NAME` and `country:CODE` are looked up: the preset's
    parsed rule, or None when there is no such preset."""

    def resolve(self, kind: str, name: str) -> Node | None: ...


def reference_parse(query: str, presets: PresetSource) -> Node:
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
        lefts = _leaves_of(left)
        if lefts is None:
            raise RuleError(NEAR_SIDES, left_tok.column)
        right_tok = self.peek()
        if right_tok is None or right_tok.kind not in ("FIELD", "TERM", "PHRASE", "PREFIX", "LP", "VALUE"):
            raise RuleError("NEAR without a term after it", tok.column)
        right = self.primary()
        rights = _leaves_of(right)
        if rights is None:
            raise RuleError(NEAR_SIDES, right_tok.column)
        again = self.peek()
        if again is not None and again.kind == "NEAR":
            raise RuleError("NEAR cannot be chained; join pairs with AND", again.column)
        n = len(lefts) * len(rights)
        if n > 64:
            raise RuleError(f"NEAR over OR groups makes {n} pairs, at most 64: split the rule with OR", tok.column)
        if n == 1:
            return Near(lefts[0], rights[0], tok.distance)
        return Or(tuple(Near(a, b, tok.distance) for a in lefts for b in rights))

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


# -- the comparison ------------------------------------------------------------
def outcome(parse, query: str):
    try:
        return ("tree", parse(query, PRESETS))
    except RuleError as err:
        return ("error", err.message, err.column)


def same_as_before(query: str) -> None:
    assert outcome(parser.parse, query) == outcome(reference_parse, query), query


PIECES = (list('ab ()"-*:/\t\u00a0\u2003_.\'&') +
          ["AND ", "OR ", "NOT ", "NEAR/2 ", "NEAR/0", "NEAR/x", "NEAR ", "NEARBY", "NEAR/1001", "title:", "Title:",
           "TITLE:", "summary:", "source:", "lang:", "body:", "http:", "topic:tariffs", "topic:", "country:",
           "country:kz", "ё", "5", "co-op", "Üran*", "ur*an", '"x y"', "\u2019", "oʻzbek", "Қазақ", "10:30"])


@pytest.mark.parametrize("query", [
    "", " ", "a", "a b", "a OR b", "a b OR c d", "OR a", "a OR", "a OR OR b", "a AND b", "a NOT b",
    "a NEAR/3 b", "a NEARBY b", "NEAR", "co-op", "a-b -c", "a -b", "-a", "a -", "& a", "a &", "a\u00a0b",
    "tariff* OR \"export duty\" -utility", "title:(a OR b) summary:c", "source:\"Kun UZ\" lang:ru-RU",
    "topic:tariffs country:kz", "country:RU", "(" * 51 + "a" + ")" * 51, "-" * 60 + "a", "a\tb", "a  OR  b",
])
def test_chosen_queries_parse_as_before(query):
    same_as_before(query)


@pytest.mark.parametrize("seed", range(20))
def test_random_queries_parse_as_before(seed):
    rng = random.Random(seed)
    for _ in range(2000):
        same_as_before("".join(rng.choice(PIECES) for _ in range(rng.randint(0, 16))))


WORDS = st.sampled_from(["oil", "gas", "OR", "AND", "NOT", "NEAR/2", "-x", "co-op", "&", "Tariffs", "ё", "a*",
                         '"b c"', "(", ")", "title:", "lang:ru", "10:30", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(WORDS, max_size=10), st.sampled_from([" ", "  ", "\t", "\u00a0"]))
def test_word_sequences_parse_as_before(words, space):
    same_as_before(space.join(words))


def test_plain_queries_take_the_short_way_and_share_leaves():
    # Bare words and ORs do not go through the tokenizer: same tree.
    for query in ["oil", "oil gas", "oil OR gas", "a b OR c d OR e", "Tariffs OR пошлина"]:
        assert parser._plain(query) == reference_parse(query, PRESETS)
    for query in ["", "OR", "a OR", "a AND b", "NOT a", "a NEAR/2 b", "&", "a &"]:
        assert parser._plain(query) is None
    assert parser.parse("oil gas", PRESETS).children[0] is parser.parse("oil", PRESETS)

