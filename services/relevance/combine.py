"""The decision: a preset's keyword match, checked by the model's score.

`decide` is a pure function of the rule's answer and the model's score:

- the rule matched and the score is below `low`   -> veto (no match);
- the rule did not match and the score is above `high` -> confirm (match);
- otherwise                                       -> keep the rule's answer.

`low = 0.0` never vetoes and `high = 1.0` never confirms, so
`Thresholds(0.0, 1.0)` is the rule alone. Every decision says why, naming the
rule's matched terms and the model's top features.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from services.relevance.model import Model


@dataclass(frozen=True)
class Thresholds:
    low: float = 0.0    # veto a rule match when score < low
    high: float = 1.0   # add a non-match when score > high

    def __post_init__(self):
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ValueError(f"need 0 <= low <= high <= 1, got {self.low}, {self.high}")

    @classmethod
    def stored(cls, meta: dict) -> "Thresholds":
        """The thresholds a model file's `meta` holds; the rule alone
        (RULE_ALONE) when it holds none."""
        t = meta.get("thresholds")
        return cls(float(t["low"]), float(t["high"])) if t else RULE_ALONE


RULE_ALONE = Thresholds(0.0, 1.0)


@dataclass(frozen=True)
class Decision:
    match: bool
    action: str                 # "keep", "veto" or "confirm"
    rule_matched: bool
    score: float
    reason: str


def _features(features: Sequence[tuple[str, float]]) -> str:
    if not features:
        return "no known features"
    return ", ".join(f"{name} {c:+.2f}" for name, c in features)


def _terms(terms: Sequence[str]) -> str:
    return " (" + ", ".join(terms) + ")" if terms else ""


def decide(rule_matched: bool, score: float, thresholds: Thresholds = RULE_ALONE, *,
           rule_terms: Sequence[str] = (), for_features: Sequence[tuple[str, float]] = (),
           against_features: Sequence[tuple[str, float]] = ()) -> Decision:
    """Combine the rule's yes/no with the model's score.

    `rule_terms` are the rule's matched terms (its evidence); `for_features`
    and `against_features` the model's top features pushing towards and away
    from the topic (`Model.explain(article, k, sign=+1 / -1)`)."""
    if rule_matched and score < thresholds.low:
        return Decision(False, "veto", True, score,
                        f"rule matched{_terms(rule_terms)} but model vetoed ({score:.2f} < {thresholds.low:g}): "
                        f"{_features(against_features)}")
    if not rule_matched and score > thresholds.high:
        return Decision(True, "confirm", False, score,
                        f"rule did not match but model confirmed ({score:.2f} > {thresholds.high:g}): "
                        f"{_features(for_features)}")
    if rule_matched:
        return Decision(True, "keep", True, score,
                        f"rule matched{_terms(rule_terms)}; model {score:.2f}: top features "
                        f"{_features(for_features)}")
    return Decision(False, "keep", False, score,
                    f"rule did not match; model {score:.2f}: top features {_features(against_features)}")


def judge(topic: str, article: Any, model: Model, thresholds: Thresholds = RULE_ALONE,
          presets: Any = None, k: int = 5) -> Decision:
    """Evaluate the preset `topic` (e.g. "topic:fx") on the article with
    services.rules, score it with `model`, and decide."""
    from services.rules import Document, evaluate, load_presets

    presets = presets if presets is not None else load_presets()
    kind, _, name = topic.partition(":")
    rule = presets.resolve(kind, name)
    if rule is None:
        raise ValueError(f"unknown preset {topic!r}")
    doc = Document.from_article(article)
    evidence = evaluate(rule, doc)
    terms: list[str] = []
    if evidence is not None:
        for hit in evidence.hits:
            if hit.term not in terms:
                terms.append(hit.term)
    fields = {"title": doc.title, "summary": doc.summary}
    return decide(evidence is not None, model.score(fields), thresholds, rule_terms=terms,
                  for_features=model.explain(fields, k, sign=1),
                  against_features=model.explain(fields, k, sign=-1))
