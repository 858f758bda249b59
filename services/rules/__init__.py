"""Subscription rules: a query language, presets and an indexed matcher.

    from services.rules import parse, Document, Matcher, evaluate
    rule = parse('tariff* OR "export duty" -utility')
    evaluate(rule, Document.from_article(article))   # Evidence or None

See docs/rules.md for the language.
"""
from services.rules import parser
from services.rules.document import Document
from services.rules.errors import PresetError, RuleError
from services.rules.evaluate import Evidence, Hit, evaluate
from services.rules.index import Matcher
from services.rules.nodes import Node
from services.rules.parser import PresetSource
from services.rules.presets import BUNDLED, LazyPresets, Preset, Presets, default_presets, load_presets


def parse(query: str, presets: PresetSource | None = None) -> Node:
    """Parse `query`; raise `RuleError` with a 1-based column if invalid.

    `topic:` and `country:` are looked up in `presets` (default: the bundled
    presets, loaded only when a query uses them)."""
    return parser.parse(query, BUNDLED if presets is None else presets)


__all__ = [
    "Document",
    "Evidence",
    "Hit",
    "LazyPresets",
    "Matcher",
    "Preset",
    "PresetError",
    "Presets",
    "RuleError",
    "default_presets",
    "evaluate",
    "load_presets",
    "parse",
]
