"""Split a query into tokens, each with its 1-based column."""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.rules.errors import RuleError

TEXT_FIELD_NAMES = ("title", "summary")
VALUE_FIELD_NAMES = ("source", "lang", "country", "topic")
MAX_NEAR = 1000

_FIELD_RE = re.compile(r"([A-Za-z]+):")
_CHUNK_RE = re.compile(r'[^\s()"]*')


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
