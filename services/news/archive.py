"""Stored articles: the retention purge, and the reads rule previews need.

Every new article of a news poll is stored (`StoredArticle`, table `article`)
with `stored_at` = when we first saw it. They are kept for
TULPAR_RETENTION_DAYS (settings.retention_days, default 90): `purge` deletes
older ones, a bounded batch per transaction, so a big purge (the first one
after retention was lowered, say) never holds the write lock for long. The
workers' sweep calls it.

The reads walk the table by `stored_at`, the one column it is indexed on:
`pages(store, since)` yields the articles stored at or after `since` in
stored_at order, one short read per page; `fetch(store, keys)` reads given
articles by key. Both select plain columns (no ORM objects): a preview reads
thousands of rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy import delete, select

from services.store import Store
from services.store.models import StoredArticle

PAGE = 2000            # rows per read while walking the table
PURGE_BATCH = 1000     # rows per purge transaction
FETCH_BATCH = 300      # keys per `(source, article_id) IN (...)`

Key = tuple[str, str]  # (source, article_id)

_A = StoredArticle
_COLUMNS = (_A.source, _A.article_id, _A.title, _A.summary, _A.link, _A.published, _A.stored_at, _A.language)


@dataclass(frozen=True, slots=True)
class Archived:
    """One stored article as the preview reads it; `first_seen` is its
    `stored_at`."""

    source: str
    article_id: str
    title: str
    summary: str
    link: str
    published: datetime | None
    first_seen: datetime
    language: str | None

    @property
    def key(self) -> Key:
        return (self.source, self.article_id)

    @property
    def lang(self) -> str | None:
        # What Document.from_article reads.
        return self.language

    def to_json(self) -> dict:
        return {"source": self.source, "id": self.article_id, "title": self.title, "summary": self.summary,
                "link": self.link, "published": self.published.isoformat() if self.published else None,
                "first_seen": self.first_seen.isoformat(), "language": self.language}


def _row(row) -> Archived:
    source, article_id, title, summary, link, published, stored_at, language = row
    return Archived(source, article_id, title or "", summary or "", link or "", published, stored_at, language)


def cutoff(now: datetime, retention_days: int) -> datetime:
    """Articles stored before this are past retention."""
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or retention_days < 1:
        raise ValueError(f"retention_days must be a whole number of days, at least 1 (got {retention_days!r})")
    if now.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC time")
    return now - timedelta(days=retention_days)


def purge(store: Store, now: datetime, retention_days: int, batch: int = PURGE_BATCH) -> int:
    """Delete the stored articles whose `stored_at` is older than
    `retention_days` before `now` (exactly at the cutoff is kept); returns
    how many. Each batch of at most `batch` rows, oldest first, is its own
    short transaction: writers (pollers committing) wait at most one batch."""
    cut = cutoff(now, retention_days)
    total = 0
    while True:
        with store.sessions.begin() as s:
            keys = [tuple(k) for k in s.execute(
                select(_A.source, _A.article_id).where(_A.stored_at < cut).order_by(_A.stored_at).limit(batch))]
            for source, ids in _by_source(keys):
                s.execute(delete(_A).where(_A.source == source, _A.article_id.in_(ids)))
        total += len(keys)
        if len(keys) < batch:
            return total


def pages(store: Store, since: datetime, page: int = PAGE) -> Iterator[list[Archived]]:
    """The articles with `stored_at >= since`, oldest first (ties by source,
    then id), `page` rows or a little more per list, each list one short
    read. One poll stores its articles with the same `stored_at`: a page
    that ends inside such a group is completed with the rest of it, then the
    next page starts after that time, so nothing is skipped or read twice."""
    if page < 1:
        raise ValueError("page must be at least 1")
    order = (_A.stored_at, _A.source, _A.article_id)
    lower = _A.stored_at >= since
    while True:
        with store.sessions() as s:
            rows = [_row(r) for r in s.execute(select(*_COLUMNS).where(lower).order_by(*order).limit(page))]
            more = len(rows) == page
            if more:
                last = rows[-1].first_seen
                rows = [r for r in rows if r.first_seen != last]
                rows += [_row(r) for r in s.execute(
                    select(*_COLUMNS).where(_A.stored_at == last).order_by(*order))]
                lower = _A.stored_at > last
        if rows:
            yield rows
        if not more:
            return


def count_since(store: Store, since: datetime) -> int:
    """How many articles have `stored_at >= since` (an index range count)."""
    with store.sessions() as s:
        return s.scalar(select(sa.func.count()).select_from(_A).where(_A.stored_at >= since)) or 0


def keys_since(store: Store, since: datetime, page: int = PAGE * 5) -> Iterator[tuple[Key, datetime]]:
    """(key, stored_at) of every article stored at or after `since`, in
    pages (no text is read)."""
    lower = _A.stored_at >= since
    while True:
        with store.sessions() as s:
            rows = s.execute(select(_A.source, _A.article_id, _A.stored_at).where(lower)
                             .order_by(_A.stored_at, _A.source, _A.article_id).limit(page)).all()
            if len(rows) == page:
                last = rows[-1][2]
                rows = [r for r in rows if r[2] != last]
                rows += s.execute(select(_A.source, _A.article_id, _A.stored_at).where(_A.stored_at == last)
                                  .order_by(_A.source, _A.article_id)).all()
                lower, more = _A.stored_at > last, True
            else:
                more = False
        for source, article_id, stored_at in rows:
            yield (source, article_id), stored_at
        if not more:
            return


def fetch(store: Store, keys: Iterable[Key]) -> dict[Key, Archived]:
    """The stored articles with these keys (missing ones are left out)."""
    found: dict[Key, Archived] = {}
    with store.sessions() as s:
        for source, ids in _by_source(keys):
            for row in s.execute(select(*_COLUMNS).where(_A.source == source, _A.article_id.in_(ids))):
                article = _row(row)
                found[article.key] = article
    return found


def _by_source(keys: Iterable[Key]) -> Iterator[tuple[str, list[str]]]:
    """Keys as (source, up to FETCH_BATCH ids): `source = ? AND article_id IN
    (...)` is a primary-key look-up on both backends, where SQLite reads
    `(source, article_id) IN (VALUES ...)` by scanning the whole table."""
    groups: dict[str, list[str]] = {}
    for source, article_id in dict.fromkeys(keys):
        groups.setdefault(source, []).append(article_id)
    for source, ids in groups.items():
        for i in range(0, len(ids), FETCH_BATCH):
            yield source, ids[i:i + FETCH_BATCH]
