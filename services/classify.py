"""Stage: which subscriptions does each new article match, and why."""
from __future__ import annotations

from dataclasses import dataclass

from services import rules
from services.article import Article
from services.config import Subscription


@dataclass(frozen=True)
class Match:
    article: Article
    subscription: Subscription
    evidence: list[dict]  # [{"field", "start", "end", "term"}], for highlighting


class Classifier:
    """The news subscriptions, indexed once; `matches` is then cheap per article."""

    def __init__(self, subscriptions: list[Subscription] | tuple[Subscription, ...]):
        self.by_name = {s.name: s for s in subscriptions if s.query is not None}
        self.matcher = rules.Matcher()
        for name, sub in self.by_name.items():
            self.matcher.add(name, rules.parse(sub.query))

    def matches(self, articles: list[Article]) -> list[Match]:
        out = []
        for article in articles:
            found = self.matcher.match(rules.Document.from_article(article))
            # Subscription order is config order, so alerts come out stable.
            for name, sub in self.by_name.items():
                if name in found:
                    out.append(Match(article, sub, evidence_json(found[name])))
        return out


def evidence_json(evidence: rules.Evidence) -> list[dict]:
    """Plain JSON for the delivery row and the templates' highlighting."""
    return [{"term": h.term, "field": h.field, "start": h.start, "end": h.end} for h in evidence.hits]
