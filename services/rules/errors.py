"""The errors of the query language: a rule that does not parse (with a
1-based column) and a preset file that cannot be used."""
from __future__ import annotations

from services.errors import TulparError


class RuleError(TulparError, ValueError):
    """An invalid rule. `str()` reads like `unbalanced parenthesis at column 14`;
    `display(query)` draws the query with a caret under that column."""

    def __init__(self, message: str, column: int):
        super().__init__(message, column)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"{self.message} at column {self.column}"

    def display(self, query: str) -> str:
        # Keep tabs so the caret lines up under terminals that expand them.
        pad = "".join("\t" if ch == "\t" else " " for ch in query[: self.column - 1])
        return f"{query}\n{pad}^"


class PresetError(TulparError, ValueError):
    """A preset file that cannot be used (bad YAML, schema or query)."""
