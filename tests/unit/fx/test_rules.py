"""FX rules: the one parser config, API and CLI share, and its error messages."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.fx.rules import ChangeRule, FxRuleError, LevelRule, describe, parse_duration, parse_rule


@pytest.mark.parametrize("text, expected", [
    ("30m", timedelta(minutes=30)),
    ("4h", timedelta(hours=4)),
    ("1d", timedelta(days=1)),
    ("7d", timedelta(days=7)),
    ("2w", timedelta(weeks=2)),
    ("36h", timedelta(hours=36)),
])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0d", "1", "1.5d", "1D", "d", "1 d", "-1d", "1y", "", None, 4, "01d"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("data, expected", [
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1.0},
     ChangeRule("a", "KZT/USD", Decimal("1.0"), "previous", "any", None)),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1.1, "window": "1d", "direction": "down",
      "cooldown": "6h"},
     ChangeRule("a", "KZT/USD", Decimal("1.1"), "1d", "down", timedelta(hours=6))),
    ({"name": "a", "pair": "USD/KZT", "change_pct": 2, "window": "previous", "direction": "up"},
     ChangeRule("a", "USD/KZT", Decimal("2"), "previous", "up", None)),
    ({"name": "a", "pair": "USD/KZT", "above": 520},
     LevelRule("a", "USD/KZT", above=Decimal("520"))),
    ({"name": "a", "pair": "KZT/USD", "below": 0.0019, "cooldown": "1d"},
     LevelRule("a", "KZT/USD", below=Decimal("0.0019"), cooldown=timedelta(days=1))),
])
def test_parse(data, expected):
    assert parse_rule(data) == expected


def test_float_thresholds_keep_the_written_digits():
    # Decimal(1.1) would be 1.100000000000000088..., and a change of exactly
    # 1.1% would then not reach it.
    assert parse_rule({"name": "a", "pair": "KZT/USD", "change_pct": 1.1}).change_pct == Decimal("1.1")


def test_name_may_be_optional_for_config():
    rule = parse_rule({"pair": "KZT/USD", "above": 1}, name_required=False)
    assert rule.name == ""


@pytest.mark.parametrize("data, key, message", [
    ({"pair": "KZT/USD", "change_pct": 1}, "name", "rule has no name"),
    ({"name": "", "pair": "KZT/USD", "change_pct": 1}, "name", "non-empty text"),
    ({"name": 7, "pair": "KZT/USD", "change_pct": 1}, "name", "non-empty text"),
    ({"name": "a", "change_pct": 1}, None, "rule 'a': has no pair"),
    ({"name": "a", "pair": "kzt/usd", "change_pct": 1}, "pair", "3 upper-case letters"),
    ({"name": "a", "pair": "KZT/USD"}, None, "needs change_pct"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "above": 2}, "change_pct", "one or the other"),
    ({"name": "a", "pair": "KZT/USD", "above": 1, "below": 2}, "below", "both above and below"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "treshold": 2}, "treshold", "unknown key 'treshold'"),
    ({"name": "a", "pair": "KZT/USD", "above": 1, "window": "1d"}, "window", "unknown key 'window' for a level rule"),
    ({"name": "a", "pair": "KZT/USD", "above": 1, "direction": "up"}, "direction", "unknown key"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "window": "daily"}, "window", "'previous' or a duration"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "window": "0h"}, "window", "not 'previous' or a duration"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "window": "1.5d"}, "window", "not 'previous' or a duration"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "window": "30s"}, "window", "not 'previous' or a duration"),
    # Past what a timedelta holds: refused like any other bad duration.
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "window": "99999999999w"}, "window", "not 'previous' or a dur"),
    ({"name": "a", "pair": "KZT/USD", "above": 1, "cooldown": 90}, "cooldown", "cooldown 90 is not a duration"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "direction": "sideways"}, "direction", "up, down, any"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1, "cooldown": "soon"}, "cooldown", "cooldown 'soon'"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 0}, "change_pct", "positive number"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": -1}, "change_pct", "positive number"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": "1%"}, "change_pct", "positive number"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": True}, "change_pct", "positive number"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": float("nan")}, "change_pct", "positive number"),
    ({"name": "a", "pair": "KZT/USD", "above": None}, "above", "positive number"),
    ({"name": "a", "pair": "KZT/USD", "below": float("inf")}, "below", "positive number"),
])
def test_parse_errors(data, key, message):
    with pytest.raises(FxRuleError, match=message) as raised:
        parse_rule(data)
    assert raised.value.key == key


@pytest.mark.parametrize("data", [None, [], "KZT/USD above 520"])
def test_a_rule_is_a_mapping(data):
    with pytest.raises(FxRuleError, match="must be a mapping"):
        parse_rule(data)


@pytest.mark.parametrize("data, text", [
    ({"name": "a", "pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down"},
     "change >= 1.0% down over 1d"),
    ({"name": "a", "pair": "KZT/USD", "change_pct": 2}, "change >= 2% over previous"),
    ({"name": "a", "pair": "USD/KZT", "above": 520}, "above 520"),
    ({"name": "a", "pair": "USD/KZT", "below": 500.5}, "below 500.5"),
])
def test_describe(data, text):
    assert describe(parse_rule(data)) == text
