"""The news pipeline: the steps of a poll (services/polling.py) that are news's own.

    read (fetch, parse the feed) -> fresh (dedupe) -> notices (classify: one per match)
      -> [route + render, polling.py] -> commit (outbox + seen + tagged articles)

The commit writes the deliveries, marks the articles seen and keeps the ones
about our countries (for the currency alerts' news links) in one transaction.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from services import polling, render
from services.config import Source
from services.net.fetch import FetchState
from services.news import dedupe, feed
from services.news.article import Article
from services.news.classify import Classifier, Match
from services.settings import Settings
from services.store import Store
from services.store.db import NewDelivery


def read(source: Source, previous: FetchState | None, settings: Settings,
         now: datetime) -> tuple[list[Article], FetchState]:
    return feed.poll(source.url, source.name, previous, settings)


def fresh(articles: list[Article], source: Source, store: Store) -> list[Article]:
    return dedupe.unseen(articles, lambda ids: store.unseen(source.name, ids))


def notices(articles: list[Article], subscriptions: polling.Subscriptions, store: Store,
            now: datetime) -> polling.Decided:
    classified = subscriptions.news.classify(articles)
    return polling.Decided([notice(m) for m in classified.matches], remember=classified.countries)


def notice(match: Match) -> polling.Notice:
    article, sub = match.article, match.subscription
    return polling.Notice.to(sub, match, article.source, article.id,
                             key=("news", article.source, article.id, polling.SUBSCRIPTION))


def email(match: Match, now: datetime, templates_dir: Path) -> dict:
    return render.alert_email(match.article, match.subscription.name, match.evidence, now=now,
                              templates_dir=templates_dir)


def webhook(match: Match, now: datetime, templates_dir: Path) -> dict:
    return render.alert_webhook(match.article, match.subscription.name, match.evidence, now=now,
                                templates_dir=templates_dir)


def commit(store: Store, source: Source, validators: FetchState, articles: list[Article],
           decided: polling.Decided, deliveries: list[NewDelivery], now: datetime) -> list[int]:
    countries = decided.remember
    return store.commit_poll(
        source=source.name, url=source.url, etag=validators.etag, last_modified=validators.last_modified,
        seen_ids=[a.id for a in articles], deliveries=deliveries, now=now,
        # Every new article is kept (rule previews run over them), tagged
        # with its countries for the currency alerts' news links.
        country_articles=[(a, countries.get(a.id, ())) for a in articles])


PIPELINE = polling.Pipeline(("items", "matches"), read=read, fresh=fresh, notices=notices,
                            email=email, webhook=webhook, commit=commit)


def poll_news(source: Source, classifier: Classifier, store: Store, settings: Settings,
              now: datetime) -> polling.PollReport:
    """One poll of a feed, without enqueueing (benchmarks/pipeline.py --direct)."""
    return polling.poll(PIPELINE, source, polling.Subscriptions(classifier), store, settings, now)
