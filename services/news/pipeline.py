"""The news pipeline for one source, as a list of small stages:

    poll -> dedupe -> classify -> route -> render -> commit (outbox) -> enqueue

The store commit writes the deliveries and marks the items seen in one
transaction; the caller enqueues the returned delivery ids afterwards (a
crash in between is healed by the sweeper, see services/delivery/outbox.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from services import render
from services.delivery import channels
from services.news import dedupe
from services.news import route
from services.news.article import Article
from services.news.classify import Classifier
from services.config import Source
from services.settings import Settings
from services.news import feed
from services.net.fetch import FetchState, SourceError
from services.store import Store
from services.store.db import NewDelivery


@dataclass
class PollReport:
    source: str
    fetched: int = 0
    new: int = 0
    matched: int = 0
    delivery_ids: list[int] = field(default_factory=list)
    error: str | None = None
    transient: bool = False

    def summary(self) -> str:
        if self.error:
            return f"{self.source}: FAILED {self.error}"
        return (f"{self.source}: {self.fetched} items, {self.new} new, {self.matched} matches, "
                f"{len(self.delivery_ids)} deliveries queued")


def poll_news(source: Source, classifier: Classifier, store: Store, settings: Settings,
              now: datetime) -> PollReport:
    report = PollReport(source.name)
    state = store.source_state(source.name)
    previous = FetchState(state.etag, state.last_modified) if state and state.url == source.url else None
    try:
        articles, fetch_state = feed.poll(source.url, source.name, previous, settings)
    except SourceError as exc:
        store.record_source_error(source.name, source.url, str(exc), now)
        report.error, report.transient = str(exc), exc.transient
        return report
    fresh = dedupe.unseen(articles, lambda ids: store.unseen(source.name, ids))
    classified = classifier.classify(fresh)
    deliveries = [rendered(r, now, settings.templates_dir) for r in route.routes(classified.matches)]
    report.fetched, report.new, report.matched = len(articles), len(fresh), len(classified.matches)
    report.delivery_ids = store.commit_poll(
        source=source.name, url=source.url, etag=fetch_state.etag,
        last_modified=fetch_state.last_modified, seen_ids=[a.id for a in fresh],
        deliveries=deliveries, now=now,
        country_articles=[(a, classified.countries[a.id]) for a in fresh if a.id in classified.countries])
    return report


def rendered(r: route.Route, now: datetime, templates_dir: Path) -> NewDelivery:
    article: Article = r.match.article
    sub = r.match.subscription.name
    if channels.kind(r.channel) == "email":
        payload = render.alert_email(article, sub, r.match.evidence, now=now, templates_dir=templates_dir)
    else:
        payload = render.alert_webhook(article, sub, r.match.evidence, now=now, templates_dir=templates_dir)
    return NewDelivery(r.idempotency_key, article.source, article.id, sub, r.channel, payload)
