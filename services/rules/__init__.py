"""Subscription rules: a query language, presets and an indexed matcher.

    from services.rules import parse, Document, Matcher, evaluate
    rule = parse('tariff* OR "export duty" -utility')
    evaluate(rule, Document.from_article(article))   # Evidence or None

See docs/rules.md for the language.
"""
from services.rules.document import Document
from services.rules.errors import PresetError, RuleError
from services.rules.evaluate import Evidence, Hit, evaluate
from services.rules.index import Matcher
from services.rules.parser import parse
from services.rules.presets import Preset, Presets, default_presets, load_presets

__all__ = [
    "Document",
    "Evidence",
    "Hit",
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
