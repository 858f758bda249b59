"""Stage: which subscriptions does each new article match, and why; and which
of our countries it is about (for the currency alerts' "latest news" links)."""
from __future__ import annotations

from dataclasses import dataclass

from services import rules
from services.countries import CODES
from services.news.article import Article
from services.config import Subscription


@dataclass(frozen=True)
class Match:
    article: Article
    subscription: Subscription
    evidence: list[dict]  # [{"field", "start", "end", "term"}], for highlighting


@dataclass(frozen=True)
class Classified:
    matches: list[Match]
    countries: dict[str, tuple[str, ...]]  # article id -> country codes it is about


class Classifier:
    """The news subscriptions and the country presets in one index, built once;
    each article is then tokenised once and checked against all of them."""

    def __init__(self, subscriptions: list[Subscription] | tuple[Subscription, ...]):
        self.by_name = {s.name: s for s in subscriptions if s.query is not None}
        self.matcher = rules.Matcher()
        for name, sub in self.by_name.items():
            self.matcher.add(name, rules.parse(sub.query))
        for code in CODES:
            # Tuple keys cannot collide with subscription names (strings).
            self.matcher.add(("country", code), f"country:{code}")

    def classify(self, articles: list[Article]) -> Classified:
        matches, countries = [], {}
        for article in articles:
            found = self.matcher.match(rules.Document.from_article(article))
            # Subscription order is config order, so alerts come out stable.
            for name, sub in self.by_name.items():
                if name in found:
                    matches.append(Match(article, sub, evidence_json(found[name])))
            tags = tuple(code for code in CODES if ("country", code) in found)
            if tags:
                countries[article.id] = tags
        return Classified(matches, countries)

    def matches(self, articles: list[Article]) -> list[Match]:
        return self.classify(articles).matches


def evidence_json(evidence: rules.Evidence) -> list[dict]:
    """Plain JSON for the delivery row and the templates' highlighting."""
    return [{"term": h.term, "field": h.field, "start": h.start, "end": h.end} for h in evidence.hits]
