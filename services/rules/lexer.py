"""Split a query into tokens, each with its 1-based column.

One compiled pattern finds each token's start and kind (a loaded rules file
is hundreds of thousands of tokens); the parser takes them as plain tuples
from `scan()`, `tokenize()` gives the same as `Token`s."""
from __future__ import annotations

import re
from typing import NamedTuple

from services.rules.errors import RuleError

TEXT_FIELD_NAMES = ("title", "summary")
VALUE_FIELD_NAMES = ("source", "lang", "country", "topic")
MAX_NEAR = 1000

_CHUNK_RE = re.compile(r'[^\s()"]*')
# Whitespace, then one of: ( ) " - a field name and its colon, or a chunk (a
# run up to whitespace, a parenthesis or a quote: an operator, a term or a
# prefix). `\s` is exactly str.isspace. No match: only whitespace is left.
_TOKEN_RE = re.compile(r'\s*+(?:(\()|(\))|(")|(-)|([A-Za-z]++):|([^\s()"]++))')
_LP, _RP, _QUOTE, _DASH, _FIELD, _CHUNK = range(1, 7)


class Token(NamedTuple):
    kind: str  # LP RP AND OR NOT NEG NEAR FIELD TERM PHRASE PREFIX VALUE
    text: str  # as written (for VALUE: the value; for FIELD: the field name)
    column: int
    distance: int = 0  # NEAR only
    field: str = ""  # VALUE only: source, lang, country or topic


ITEM_START = frozenset({"LP", "NOT", "NEG", "FIELD", "TERM", "PHRASE", "PREFIX", "VALUE"})


def tokenize(query: str) -> list[Token]:
    return [Token(*t) for t in scan(query)]


def scan(query: str) -> list[tuple[str, str, int, int, str]]:
    """The tokens as (kind, text, column, distance, field) tuples."""
    tokens: list[tuple[str, str, int, int, str]] = []
    append = tokens.append
    match = _TOKEN_RE.match
    i = 0
    while (m := match(query, i)) is not None:
        group = m.lastindex
        start = m.start(group)
        col = start + 1
        i = m.end()
        if group == _CHUNK:
            text = m.group(group)
            if text == "AND" or text == "OR" or text == "NOT":
                append((text, text, col, 0, ""))
            elif text.startswith("NEAR") and (len(text) == 4 or text[4] == "/"):
                append(_near(text, col))
            elif "*" in text:
                star = text.index("*")
                if star != len(text) - 1:
                    raise RuleError("'*' may only end a prefix, like uran*", col + star)
                append(("PREFIX", text, col, 0, ""))
            else:
                append(("TERM", text, col, 0, ""))
        elif group == _FIELD:
            written = m.group(group)
            name = written.lower()
            if name in TEXT_FIELD_NAMES:
                append(("FIELD", name, col, 0, ""))
            elif name in VALUE_FIELD_NAMES:
                if query[i : i + 1] == '"':
                    value, end = _quoted(query, i)
                else:
                    end = _CHUNK_RE.match(query, i).end()
                    value = query[i:end]
                if not value.strip():
                    raise RuleError(f"{name}: needs a value", col)
                append(("VALUE", value, col, 0, name))
                i = end
            else:
                raise RuleError(f"unknown field '{written}' (known: title, summary, source, lang, country, topic)",
                                col)
        elif group == _QUOTE:
            text, i = _quoted(query, start)
            append(("PHRASE", text, col, 0, ""))
        elif group == _DASH:
            nxt = query[i : i + 1]
            if not nxt or nxt.isspace() or nxt == ")":
                raise RuleError("'-' needs a term, phrase or group right after it", col)
            append(("NEG", "-", col, 0, ""))
        elif group == _LP:
            append(("LP", "(", col, 0, ""))
        else:
            append(("RP", ")", col, 0, ""))
    return tokens


def _near(text: str, col: int) -> tuple[str, str, int, int, str]:
    digits = text[5:]
    if not (digits.isascii() and digits.isdigit()):
        raise RuleError("NEAR needs a distance, like NEAR/5", col)
    distance = int(digits)
    if not 1 <= distance <= MAX_NEAR:
        raise RuleError(f"NEAR distance must be between 1 and {MAX_NEAR}", col)
    return ("NEAR", text, col, distance, "")


def _quoted(query: str, i: int) -> tuple[str, int]:
    end = query.find('"', i + 1)
    if end < 0:
        raise RuleError("unbalanced quote", i + 1)
    return query[i + 1 : end], end + 1
