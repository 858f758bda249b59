import pytest

from services.relevance.combine import RULE_ALONE, Decision, Thresholds, decide, judge
from services.relevance.model import TrainConfig, train

T = Thresholds(low=0.1, high=0.9)
FOR = [("exchange", 0.41), ('"exchange rate"', 0.3)]
AGAINST = [("harvest", -0.5)]


@pytest.mark.parametrize("rule, score, match, action", [
    (True, 0.05, False, "veto"),
    (True, 0.10, True, "keep"),      # not below low
    (True, 0.50, True, "keep"),
    (True, 0.99, True, "keep"),
    (False, 0.95, True, "confirm"),
    (False, 0.90, False, "keep"),    # not above high
    (False, 0.50, False, "keep"),
    (False, 0.01, False, "keep"),
])
def test_decision_table(rule, score, match, action):
    d = decide(rule, score, T, rule_terms=["курс"], for_features=FOR, against_features=AGAINST)
    assert (d.match, d.action, d.rule_matched, d.score) == (match, action, rule, score)


def test_rule_alone_never_changes_the_answer():
    for rule in (True, False):
        for score in (0.0, 0.3, 1.0):
            assert decide(rule, score, RULE_ALONE).match is rule


def test_explanation_text():
    d = decide(True, 0.93, T, rule_terms=["exchange rate", "tenge"], for_features=FOR, against_features=AGAINST)
    assert d.reason == ('rule matched (exchange rate, tenge); model 0.93: top features '
                        'exchange +0.41, "exchange rate" +0.30')
    d = decide(True, 0.04, T, rule_terms=["sanction*"], for_features=FOR, against_features=AGAINST)
    assert d.reason == "rule matched (sanction*) but model vetoed (0.04 < 0.1): harvest -0.50"
    d = decide(False, 0.97, T, for_features=FOR, against_features=AGAINST)
    assert d.reason == ('rule did not match but model confirmed (0.97 > 0.9): exchange +0.41, '
                        '"exchange rate" +0.30')
    d = decide(False, 0.2, T, for_features=[], against_features=[])
    assert d.reason == "rule did not match; model 0.20: top features no known features"


def test_thresholds_are_checked():
    with pytest.raises(ValueError):
        Thresholds(0.6, 0.4)
    with pytest.raises(ValueError):
        Thresholds(-0.1, 0.5)


def test_judge_uses_the_preset_and_says_why():
    pos = ["Tenge exchange rate slid to a record low", "Exchange rate of the som weakened",
           "Курс тенге снизился", "Rouble exchange rate falls"]
    neg = ["Wheat harvest in Kostanay", "New school opens in Osh", "Урожай пшеницы", "Football club wins"]
    items = [{"id": str(i), "title": t, "summary": "", "lang": "en", "labels": ["topic:fx"]} for i, t in enumerate(pos)]
    items += [{"id": "n" + str(i), "title": t, "summary": "", "lang": "en", "labels": []} for i, t in enumerate(neg)]
    model = train(items, "topic:fx", TrainConfig(l2=1e-4, iterations=300, min_df=1))
    article = {"title": "Tenge exchange rate slid", "summary": "The tenge weakened against the dollar."}
    d = judge("topic:fx", article, model, Thresholds(0.0, 1.0))
    assert isinstance(d, Decision) and d.match and d.action == "keep"
    assert d.reason.startswith("rule matched (") and "model" in d.reason
    # a veto threshold above the score turns the rule's match into a veto, with reasons
    d = judge("topic:fx", article, model, Thresholds(1.0, 1.0))
    assert not d.match and d.action == "veto" and "but model vetoed" in d.reason
    with pytest.raises(ValueError):
        judge("topic:nope", article, model)
