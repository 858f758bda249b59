"""FX alert rules: one parser for config, API and CLI, and a pure evaluator.

Semantics (docs/fx.md has the long form):
- change rule: change_pct = (new - old) / old * 100, where old is the pair's
  previous observation (window `previous`) or its latest observation at or
  before new.at - window (window `4h`, `1d`, ...). The condition holds when
  |change| >= change_pct (exactly equal fires) for `any`, change >= +t for
  `up`, change <= -t for `down`.
- level rule: `above: X` holds when rate > X, `below: X` when rate < X
  (exactly equal does not hold). `from` is the previous observation.
- no old value (first observation, or nothing old enough for the window):
  "no data": the rule neither fires nor re-arms; its state is unchanged.
- edge-triggered: fires when the condition holds and the rule is armed, then
  disarms; a later observation where the condition is false re-arms it.
- cooldown: a would-be firing less than `cooldown` after the last firing is
  dropped (and disarms, as if it had fired): repeats are swallowed, not delayed.
"""
from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services import durations
from services.errors import TulparError
from services.fx.history import by_pair, latest_at_or_before, series
from services.fx.pairs import PairError, change_pct, check_pair
from services.fx.quote import Quote

# A rule's window and cooldown use the shared duration grammar
# (services/durations.py), narrowed to the subset docs/fx.md promises: a
# positive whole number and one unit of minutes, hours, days or weeks, as
# written (`30m`, `1d`; not `90`, `30s`, `1.5d`, `1 d`, `1D` or `01d`). The
# window is also echoed in alerts (`over 1d`), so it stays in this one form.
_RULE_DURATION = re.compile(r"[1-9][0-9]*[mhdw]")
DIRECTIONS = ("up", "down", "any")
CHANGE_KEYS = ("name", "pair", "change_pct", "window", "direction", "cooldown")
LEVEL_KEYS = ("name", "pair", "above", "below", "cooldown")


class FxRuleError(TulparError, ValueError):
    """An FX rule that cannot be used; `key` names the offending key when there is one."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class ChangeRule:
    name: str
    pair: str
    change_pct: Decimal
    window: str = "previous"  # or a duration text; see window_delta
    direction: str = "any"
    cooldown: timedelta | None = None

    @property
    def window_delta(self) -> timedelta | None:
        return None if self.window == "previous" else parse_duration(self.window)


@dataclass(frozen=True, slots=True)
class LevelRule:
    name: str
    pair: str
    above: Decimal | None = None
    below: Decimal | None = None
    cooldown: timedelta | None = None

    window = "previous"  # a level alert reports the move from the previous observation


Rule = ChangeRule | LevelRule


@dataclass(frozen=True, slots=True)
class RuleState:
    """What the pipeline persists per rule between polls."""

    armed: bool = True
    last_fired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    rule: str
    pair: str
    at: datetime
    from_rate: Decimal
    to_rate: Decimal
    change_pct: Decimal
    from_at: datetime
    window: str
    condition: str
    source: str = ""


def parse_duration(text: object) -> timedelta:
    """`30m`, `4h`, `1d`, `7d`, `2w`: a positive whole number and one unit."""
    if not (isinstance(text, str) and _RULE_DURATION.fullmatch(text)):
        raise ValueError(f"{text!r} is not a duration like 30m, 4h, 1d or 2w")
    return durations.parse_timedelta(text)


def parse_rule(data: object, *, name_required: bool = True) -> Rule:
    """Build a rule from a plain dict (YAML, JSON); FxRuleError says what is wrong."""
    if not isinstance(data, Mapping):
        raise FxRuleError(f"a rule must be a mapping of keys to values, not {type(data).__name__}")
    name = data.get("name")
    if name is None and name_required:
        raise FxRuleError("rule has no name", "name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise FxRuleError(f"rule name must be non-empty text, not {name!r}", "name")
    label = f"rule {name!r}" if name else "rule"
    is_level = "above" in data or "below" in data
    if is_level and "change_pct" in data:
        raise FxRuleError(f"{label}: has change_pct and a level (above/below); "
                          "a rule is one or the other", "change_pct")
    if not is_level and "change_pct" not in data:
        raise FxRuleError(f"{label}: needs change_pct (a change rule) or above/below (a level rule)")
    allowed = LEVEL_KEYS if is_level else CHANGE_KEYS
    for key in data:
        if key not in allowed:
            kind = "level" if is_level else "change"
            raise FxRuleError(f"{label}: unknown key {key!r} for a {kind} rule "
                              f"(allowed: {', '.join(allowed)})", str(key))
    if "pair" not in data:
        raise FxRuleError(f"{label}: has no pair")
    try:
        pair = check_pair(data["pair"])
    except PairError as e:
        raise FxRuleError(f"{label}: {e}", "pair") from None
    cooldown = _duration(data, "cooldown", label) if "cooldown" in data else None
    if is_level:
        if "above" in data and "below" in data:
            raise FxRuleError(f"{label}: has both above and below; write two rules", "below")
        return LevelRule(name or "", pair, above=_positive(data, "above", label),
                         below=_positive(data, "below", label), cooldown=cooldown)
    window = data.get("window", "previous")
    if window != "previous":
        _duration(data, "window", label, also="'previous' or ")
    direction = data.get("direction", "any")
    if direction not in DIRECTIONS:
        raise FxRuleError(f"{label}: direction {direction!r} is not one of up, down, any", "direction")
    return ChangeRule(name or "", pair, _positive(data, "change_pct", label), window,
                      direction, cooldown)


def describe(rule: Rule) -> str:
    """For people: `change >= 1.0% down over 1d`, `above 520`."""
    if isinstance(rule, LevelRule):
        return f"above {rule.above}" if rule.above is not None else f"below {rule.below}"
    way = "" if rule.direction == "any" else f" {rule.direction}"
    return f"change >= {rule.change_pct}%{way} over {rule.window}"


def evaluate(rule: Rule, history: Sequence[Quote], new: Quote,
             state: RuleState) -> tuple[Alert | None, RuleState]:
    """Decide on `new` given the pair's earlier points (time-ordered; any at or
    after new.at are ignored) and the rule's state. Pure: same in, same out."""
    hi = bisect.bisect_left(history, new.at, key=lambda q: q.at)
    return _decide(rule, _old(rule, history, hi, new), new, state)


def run(rules: Sequence[Rule], quotes: Iterable[Quote]) -> list[Alert]:
    """Every alert over a whole history, each rule starting armed; ordered by
    time, then by the rule's position in `rules`."""
    groups = by_pair(quotes)
    found: list[tuple[datetime, int, Alert]] = []
    for index, rule in enumerate(rules):
        points, state = series(rule.pair, groups), RuleState()
        for i, new in enumerate(points):
            alert, state = _decide(rule, _old(rule, points, i, new), new, state)
            if alert is not None:
                found.append((alert.at, index, alert))
    found.sort(key=lambda item: item[:2])
    return [alert for _, _, alert in found]


def _old(rule: Rule, points: Sequence[Quote], hi: int, new: Quote) -> Quote | None:
    delta = rule.window_delta if isinstance(rule, ChangeRule) else None
    if delta is None:
        return points[hi - 1] if hi else None
    return latest_at_or_before(points, new.at - delta, hi)


def _holds(rule: Rule, new: Quote, pct: Decimal) -> bool:
    if isinstance(rule, LevelRule):
        return new.rate > rule.above if rule.above is not None else new.rate < rule.below
    if rule.direction == "up":
        return pct >= rule.change_pct
    if rule.direction == "down":
        return pct <= -rule.change_pct
    return abs(pct) >= rule.change_pct


def _decide(rule: Rule, old: Quote | None, new: Quote,
            state: RuleState) -> tuple[Alert | None, RuleState]:
    if old is None:
        return None, state
    pct = change_pct(old.rate, new.rate)
    if not _holds(rule, new, pct):
        return None, RuleState(True, state.last_fired_at)
    if not state.armed:
        return None, state
    cooling = (rule.cooldown is not None and state.last_fired_at is not None
               and new.at - state.last_fired_at < rule.cooldown)
    if cooling:
        return None, RuleState(False, state.last_fired_at)
    alert = Alert(rule.name, rule.pair, new.at, old.rate, new.rate, pct, old.at,
                  rule.window, describe(rule), new.source)
    return alert, RuleState(False, new.at)


def _duration(data: Mapping, key: str, label: str, also: str = "") -> timedelta:
    try:
        return parse_duration(data[key])
    except ValueError:
        raise FxRuleError(f"{label}: {key} {data[key]!r} is not {also}a duration like "
                          "30m, 4h, 1d or 2w", key) from None


def _positive(data: Mapping, key: str, label: str) -> Decimal | None:
    if key not in data:
        return None
    value = data[key]
    number: Decimal | None = None
    # bool is an int subclass: `above: yes` must not mean `above: 1`.
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        if not (isinstance(value, float) and not math.isfinite(value)):
            # repr(1.1) == "1.1": keep what the user wrote, not 1.100000000000000088...
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if number is None or not number.is_finite() or number <= 0:
        raise FxRuleError(f"{label}: {key} must be a positive number, not {value!r}", key)
    return number


__all__ = ["Alert", "ChangeRule", "FxRuleError", "LevelRule", "Rule", "RuleState", "describe",
           "evaluate", "parse_duration", "parse_rule", "run"]
