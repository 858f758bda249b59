"""FX rule semantics over a rate history: tables of cases per rule kind."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.fx.history import series
from services.fx.pairs import report
from services.fx.rules import RuleState, evaluate, parse_rule, run
from services.fx.quote import Quote


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def quotes(rows: list[tuple[str, str, str]]) -> list[Quote]:
    return [Quote(pair, Decimal(rate), at(when)) for when, pair, rate in rows]


def usd_kzt(*points: tuple[str, str]) -> list[tuple[str, str, str]]:
    return [(when, "USD/KZT", rate) for when, rate in points]


D1, D2, D3, D4, D5 = (f"2024-03-0{i}" for i in range(1, 6))
INV = "0.002", str(report(Decimal(1) / Decimal(510)))

CASES = [
    # -- change rules, window `previous` --
    ("exactly equal fires", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "505")), [(D2, "500", "505")]),
    ("just below does not fire", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "504.99")), []),
    ("first observation ever is no data", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500")), []),
    ("no data at all", {"pair": "USD/KZT", "change_pct": 1}, [], []),
    ("stays fired while the condition holds", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "510"), (D3, "520"), (D4, "530")), [(D2, "500", "510")]),
    ("re-arms after a false observation", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "510"), (D3, "520"), (D4, "521"), (D5, "530")),
     [(D2, "500", "510"), (D5, "521", "530")]),
    ("a gap in the data: previous is the previous observation, however old",
     {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), ("2024-03-20", "510")), [("2024-03-20", "500", "510")]),
    ("direction up ignores falls", {"pair": "USD/KZT", "change_pct": 1, "direction": "up"},
     usd_kzt((D1, "500"), (D2, "490"), (D3, "500")), [(D3, "490", "500")]),
    ("direction down ignores rises", {"pair": "USD/KZT", "change_pct": 1, "direction": "down"},
     usd_kzt((D1, "500"), (D2, "510"), (D3, "500")), [(D3, "510", "500")]),
    ("direction down, exactly -t fires", {"pair": "USD/KZT", "change_pct": 1, "direction": "down"},
     usd_kzt((D1, "500"), (D2, "495")), [(D2, "500", "495")]),
    ("direction any fires on falls", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "490")), [(D2, "500", "490")]),
    ("an up-only rule re-arms on a fall", {"pair": "USD/KZT", "change_pct": 1, "direction": "up"},
     usd_kzt((D1, "500"), (D2, "510"), (D3, "500"), (D4, "510")),
     [(D2, "500", "510"), (D4, "500", "510")]),
    # -- inverse pair: the change is measured on the inverted series --
    ("inverse pair", {"pair": "KZT/USD", "change_pct": 1, "direction": "down"},
     usd_kzt((D1, "500"), (D2, "510")), [(D2, INV[0], INV[1])]),
    ("inverse pair: +1% on USD/KZT is -0.990% on KZT/USD", {"pair": "KZT/USD", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "505")), []),
    ("inverse pair: an exact 1% move on the inverse fires", {"pair": "KZT/USD", "change_pct": 1},
     usd_kzt((D1, "505"), (D2, "500")), [(D2, str(report(Decimal(1) / 505)), "0.002")]),
    ("cross pair: an exact 1% move fires", {"pair": "RUB/KZT", "change_pct": 1, "direction": "up"},
     usd_kzt((D1, "500"), (D2, "505")) + [(D1, "USD/RUB", "90")],
     [(D2, str(report(Decimal(500) / 90)), str(report(Decimal(505) / 90)))]),
    # -- window durations: old = latest observation at or before now - window --
    ("1d window, exactly one day earlier counts", {"pair": "USD/KZT", "change_pct": 1, "window": "1d"},
     usd_kzt((D1, "500"), (D2, "505")), [(D2, "500", "505")]),
    ("1d window over a gap uses the last observation before it",
     {"pair": "USD/KZT", "change_pct": 1, "window": "1d"},
     usd_kzt((D1, "500"), (D4, "510")), [(D4, "500", "510")]),
    ("1d window with no data a day back is no data", {"pair": "USD/KZT", "change_pct": 1, "window": "1d"},
     usd_kzt((f"{D1}T00:00", "500"), (f"{D1}T06:00", "520"), (f"{D1}T23:59", "530")), []),
    ("4h window compares against 4h back, not the previous point",
     {"pair": "USD/KZT", "change_pct": 1, "window": "4h"},
     usd_kzt((f"{D1}T00:00", "500"), (f"{D1}T02:00", "510"), (f"{D1}T04:00", "505"),
             (f"{D1}T06:00", "506"), (f"{D1}T08:00", "511")),
     [(f"{D1}T04:00", "500", "505"), (f"{D1}T08:00", "505", "511")]),
    ("7d window", {"pair": "USD/KZT", "change_pct": 2, "window": "7d", "direction": "up"},
     usd_kzt(("2024-03-01", "500"), ("2024-03-05", "509"), ("2024-03-08", "511"), ("2024-03-09", "512")),
     [("2024-03-08", "500", "511")]),
    # -- cooldown --
    ("cooldown swallows a repeat inside it", {"pair": "USD/KZT", "above": 520, "cooldown": "1d"},
     usd_kzt((f"{D1}T00:00", "510"), (f"{D1}T01:00", "525"), (f"{D1}T02:00", "515"),
             (f"{D1}T03:00", "525"), (f"{D1}T04:00", "515"), (f"{D2}T01:00", "526")),
     [(f"{D1}T01:00", "510", "525"), (f"{D2}T01:00", "515", "526")]),
    ("a swallowed repeat is not delayed to the end of the cooldown",
     {"pair": "USD/KZT", "above": 520, "cooldown": "1d"},
     usd_kzt((f"{D1}T00:00", "510"), (f"{D1}T01:00", "525"), (f"{D1}T02:00", "515"),
             (f"{D1}T03:00", "525"), (f"{D2}T06:00", "526")),
     [(f"{D1}T01:00", "510", "525")]),
    ("cooldown ends exactly cooldown after the firing", {"pair": "USD/KZT", "change_pct": 1, "cooldown": "2d"},
     usd_kzt((D1, "500"), (D2, "510"), (D3, "510"), (D4, "520")),
     [(D2, "500", "510"), (D4, "510", "520")]),
    ("cooldown on a change rule", {"pair": "USD/KZT", "change_pct": 1, "cooldown": "3d"},
     usd_kzt((D1, "500"), (D2, "510"), (D3, "510"), (D4, "520"), (D5, "520"), ("2024-03-06", "530")),
     [(D2, "500", "510"), ("2024-03-06", "520", "530")]),
    # -- level rules: above is rate > X, below is rate < X; from = previous observation --
    ("above: exactly equal does not fire", {"pair": "USD/KZT", "above": 520},
     usd_kzt((D1, "510"), (D2, "520"), (D3, "520.01")), [(D3, "520", "520.01")]),
    ("below: exactly equal does not fire", {"pair": "USD/KZT", "below": 500},
     usd_kzt((D1, "510"), (D2, "500"), (D3, "499.99")), [(D3, "500", "499.99")]),
    ("below re-arms when back above", {"pair": "USD/KZT", "below": 500},
     usd_kzt((D1, "510"), (D2, "495"), (D3, "490"), (D4, "505"), (D5, "499")),
     [(D2, "510", "495"), (D5, "505", "499")]),
    ("level: first observation ever is no data", {"pair": "USD/KZT", "above": 520},
     usd_kzt((D1, "525")), []),
    ("level already crossed when history starts fires on the second observation",
     {"pair": "USD/KZT", "above": 520}, usd_kzt((D1, "525"), (D2, "526"), (D3, "527")),
     [(D2, "525", "526")]),
    ("level on an inverse pair", {"pair": "KZT/USD", "below": 0.00199},
     usd_kzt((D1, "500"), (D2, "510")), [(D2, INV[0], INV[1])]),
    # -- cross pairs: legs at their latest observation at or before each time --
    ("cross pair moves with either leg", {"pair": "KZT/RUB", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "510")) + [(D1, "USD/RUB", "90")],
     [(D2, "0.18", str(report(Decimal(90) / Decimal(510))))]),
    ("cross pair starts when both legs exist", {"pair": "KZT/RUB", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "510")) + [(D2, "USD/RUB", "90")], []),
    ("direct quotes win over a cross", {"pair": "KZT/RUB", "change_pct": 1},
     usd_kzt((D1, "500"), (D2, "600")) + [(D1, "USD/RUB", "90"), (D1, "KZT/RUB", "0.2"), (D2, "KZT/RUB", "0.2")],
     []),
    ("other pairs do not disturb a rule", {"pair": "USD/KZT", "change_pct": 1},
     usd_kzt((D1, "500"), (D3, "505")) + [(D2, "USD/RUB", "90"), (D2, "EUR/USD", "1.1")], [(D3, "500", "505")]),
]


@pytest.mark.parametrize("rule, rows, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_semantics(rule, rows, expected):
    alerts = run([parse_rule({"name": "r", **rule})], quotes(rows))
    # Derived rates carry working precision; compare what we report (28 digits).
    assert [(a.at, report(a.from_rate), report(a.to_rate)) for a in alerts] == [
        (at(when), Decimal(old), Decimal(new)) for when, old, new in expected]


def test_alert_carries_what_the_message_needs():
    rows = [Quote("USD/KZT", Decimal("500"), at(D1), "nbk"), Quote("USD/KZT", Decimal("505"), at(D3), "nbk")]
    rule = parse_rule({"name": "kzt", "pair": "KZT/USD", "change_pct": 0.5, "window": "1d", "direction": "down"})
    [alert] = run([rule], rows)
    assert (alert.rule, alert.pair, alert.window, alert.source) == ("kzt", "KZT/USD", "1d", "nbk")
    assert (alert.at, alert.from_at) == (at(D3), at(D1))
    assert alert.condition == "change >= 0.5% down over 1d"
    assert alert.change_pct == Decimal("-0.9900990099009900990099009901")


def test_alerts_are_in_time_order_then_rule_order():
    rows = quotes(usd_kzt((D1, "500"), (D2, "510"), (D3, "530")))
    rules = [parse_rule({"name": "big", "pair": "USD/KZT", "change_pct": 3}),
             parse_rule({"name": "level", "pair": "USD/KZT", "above": 505}),
             parse_rule({"name": "small", "pair": "USD/KZT", "change_pct": 1})]
    assert [(a.at.day, a.rule) for a in run(rules, rows)] == [(2, "level"), (2, "small"), (3, "big")]
    assert [a.rule for a in run(rules[::-1], rows)] == ["small", "level", "big"]


STATE_CASES = [
    # (rule, history, new, state in) -> (fires?, state out)
    ("no data keeps a disarmed rule disarmed", {"change_pct": 1}, [], "505", RuleState(False, at(D1)),
     False, RuleState(False, at(D1))),
    ("no data keeps an armed rule armed", {"change_pct": 1}, [], "505", RuleState(), False, RuleState()),
    ("false re-arms and keeps the last firing", {"change_pct": 1}, ["500"], "501",
     RuleState(False, at(D1)), False, RuleState(True, at(D1))),
    ("true and armed fires", {"change_pct": 1}, ["500"], "510", RuleState(), True,
     RuleState(False, at(D3))),
    ("true and disarmed stays quiet", {"change_pct": 1}, ["500"], "510", RuleState(False, at(D1)),
     False, RuleState(False, at(D1))),
    ("armed but cooling down: swallowed and disarmed", {"change_pct": 1, "cooldown": "3d"}, ["500"], "510",
     RuleState(True, at(D1)), False, RuleState(False, at(D1))),
]


@pytest.mark.parametrize("rule, history, new, state, fires, after", [c[1:] for c in STATE_CASES],
                         ids=[c[0] for c in STATE_CASES])
def test_evaluate_state(rule, history, new, state, fires, after):
    parsed = parse_rule({"name": "r", "pair": "USD/KZT", **rule})
    hist = [Quote("USD/KZT", Decimal(r), at(D2)) for r in history]
    alert, out = evaluate(parsed, hist, Quote("USD/KZT", Decimal(new), at(D3)), state)
    assert (alert is not None, out) == (fires, after)


def test_evaluate_ignores_history_at_or_after_the_new_point():
    rule = parse_rule({"name": "r", "pair": "USD/KZT", "change_pct": 1})
    hist = quotes(usd_kzt((D1, "500"), (D2, "999"), (D3, "1")))
    alert, _ = evaluate(rule, hist, Quote("USD/KZT", Decimal("510"), at(D2)), RuleState())
    assert (alert.from_rate, alert.to_rate) == (Decimal(500), Decimal(510))


RULES = [
    {"change_pct": 1}, {"change_pct": 0.5, "direction": "up", "cooldown": "2d"},
    {"change_pct": 1, "window": "2d", "direction": "down"}, {"above": 505}, {"below": 498, "cooldown": "1d"},
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(RULES),
       st.lists(st.tuples(st.integers(1, 30), st.integers(490, 515)), max_size=25, unique_by=lambda t: t[0]))
def test_polling_one_point_at_a_time_matches_a_batch_run(rule_data, points):
    # The pipeline evaluates each new observation against stored history and a
    # persisted RuleState; that must give exactly the alerts of one batch run.
    rule = parse_rule({"name": "r", "pair": "KZT/USD", **rule_data})
    rows = [Quote("USD/KZT", Decimal(r), datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=12 * h))
            for h, r in points]
    state, polled = RuleState(), []
    ordered = series("KZT/USD", rows)
    for i, new in enumerate(ordered):
        alert, state = evaluate(rule, ordered[:i], new, state)
        polled += [alert] if alert else []
    assert polled == run([rule], rows)
