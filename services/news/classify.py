"""Stage: which subscriptions does each new article match, and why; and which
of our countries it is about (for the currency alerts' "latest news" links).

The subscriptions and the country presets sit in one Matcher (services/rules),
so classifying an article costs what matching it costs plus its matches: the
subscriptions it does not match are never looked at. Subscriptions come and go
one at a time (a tenant's, by id: services/accounts/live.py); the config
file's are replaced together when the file changes."""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Hashable

from services import collector, rules
from services.countries import CODES
from services.news.article import Article
from services.config import Subscription
from services.threads import synchronized

log = logging.getLogger(__name__)

CONFIG, TENANT, COUNTRY = "config", "tenant", "country"


@dataclass(frozen=True)
class Match:
    article: Article
    subscription: Subscription
    evidence: list[dict]  # [{"field", "start", "end", "term"}], for highlighting


@dataclass(frozen=True)
class Classified:
    matches: list[Match]
    countries: dict[str, tuple[str, ...]]  # article id -> country codes it is about


def key_of(sub: Subscription) -> tuple[str, str]:
    """A subscription's key in the matcher: a tenant's by id, the config's by
    name, tagged so that neither can shadow the other (nor a country)."""
    return (TENANT, sub.id) if sub.id is not None else (CONFIG, sub.name)


class Classifier:
    """The news subscriptions and the country presets in one index; each
    article is then tokenised once and checked against all of them.

    Matches come out per article in a fixed order whatever the order of the
    changes: the config's in file order, then the tenants' by id.

    Safe to share between threads (the poll worker runs its polls in
    threads of one process): a change and a classification never run at
    the same time, because the index is changed in place."""

    def __init__(self, subscriptions: Iterable[Subscription] = ()):
        self.lock = threading.RLock()
        self.matcher = rules.Matcher()
        # key -> (place in the output order, subscription)
        self._subs: dict[tuple[str, str], tuple[tuple, Subscription]] = {}
        for code in CODES:
            self.matcher.add((COUNTRY, code), f"country:{code}")
        self.set_config(subscriptions)

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, subscription_id: str) -> bool:
        return (TENANT, subscription_id) in self._subs

    @synchronized
    def subscriptions(self) -> list[Subscription]:
        return [sub for _, sub in sorted(self._subs.values(), key=lambda p: p[0])]

    # -- changes ---------------------------------------------------------------
    @synchronized
    def set_config(self, subscriptions: Iterable[Subscription]) -> None:
        """Make the config file's subscriptions these. One whose query is
        unchanged keeps its parsed rule (its channels may change); the
        tenants' are not touched."""
        wanted = {}
        for sub in subscriptions:
            if sub.query is not None and sub.id is None:
                wanted[key_of(sub)] = sub
        for key in [k for k in self._subs if k[0] == CONFIG and k not in wanted]:
            self.matcher.remove(key)
            del self._subs[key]
        for i, (key, sub) in enumerate(wanted.items()):
            old = self._subs.get(key)
            if old is None or old[1].query != sub.query:
                self.matcher.add(key, rules.parse(sub.query))
            self._subs[key] = ((0, i), sub)

    @synchronized
    def put(self, sub: Subscription) -> None:
        """Add or replace a tenant's subscription (RuleError if its query
        does not parse: then it is not in here)."""
        key = key_of(sub)
        self.remove(sub.id)
        self.matcher.add(key, rules.parse(sub.query))
        self._subs[key] = ((1, sub.id), sub)

    @synchronized
    def put_many(self, subs: Sequence[Subscription]) -> list[tuple[Subscription, Exception]]:
        """`put` for many (a worker's start): each distinct query parsed once,
        the index built with the garbage collector paused (Matcher.add_many).
        Returns the subscriptions whose query did not parse, with the error."""
        parsed: dict[str, rules.Node] = {}
        failed: list[tuple[Subscription, Exception]] = []
        # Keys and trees in two lists, paired by zip (which reuses its one
        # tuple), not a (key, tree) pair each: 100k pairs freed after the
        # load would leave holes among what stays, which a process forked
        # afterwards fills, copying the pages it shares with its parent.
        keys: list[Hashable] = []
        trees: list[rules.Node] = []
        with collector.paused():
            for sub in subs:
                self.remove(sub.id)
                tree = parsed.get(sub.query)
                if tree is None:
                    try:
                        tree = parsed[sub.query] = rules.parse(sub.query)
                    except ValueError as exc:  # RuleError, PresetError
                        failed.append((sub, exc))
                        continue
                key = key_of(sub)
                keys.append(key)
                trees.append(tree)
                self._subs[key] = ((1, sub.id), sub)
        self.matcher.add_many(zip(keys, trees))
        return failed

    @synchronized
    def remove(self, subscription_id: str) -> None:
        """Drop a tenant's subscription, if it is here."""
        key = (TENANT, subscription_id)
        if self._subs.pop(key, None) is not None:
            self.matcher.remove(key)

    # -- matching ----------------------------------------------------------------
    @synchronized
    def classify(self, articles: list[Article]) -> Classified:
        matches, countries = [], {}
        subs = self._subs
        for article in articles:
            found = self.matcher.match(rules.Document.from_article(article))
            hits, tags = [], set()
            for key in found:  # only what matched
                if key[0] == COUNTRY:
                    tags.add(key[1])
                else:
                    hits.append(subs[key] + (key,))
            hits.sort(key=lambda h: h[0])
            for _, sub, key in hits:
                matches.append(Match(article, sub, evidence_json(found[key])))
            if tags:
                countries[article.id] = tuple(code for code in CODES if code in tags)
        return Classified(matches, countries)

    def matches(self, articles: list[Article]) -> list[Match]:
        return self.classify(articles).matches


def evidence_json(evidence: rules.Evidence) -> list[dict]:
    """Plain JSON for the delivery row and the templates' highlighting."""
    return [{"term": h.term, "field": h.field, "start": h.start, "end": h.end} for h in evidence.hits]
