"""The store: every read and write the pipeline and the workers need, each one
short transaction. Callers pass `now`; the store never reads the clock."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.store.models import Attempt, Base, Delivery, SeenArticle, SourceState, StoredArticle


@dataclass(frozen=True)
class NewDelivery:
    idempotency_key: str
    item_source: str
    item_id: str
    subscription: str
    channel: str
    payload: dict


def _normalise_url(url: str) -> str:
    # Users write postgresql://; SQLAlchemy would pick psycopg2, we ship psycopg 3.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Store:
    def __init__(self, url: str):
        url = _normalise_url(url)
        kwargs: dict = {"future": True}
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("sqlite"):
            # Several worker processes share one SQLite file: wait for locks
            # instead of failing, and let readers run beside the writer (WAL).
            kwargs["connect_args"] = {"timeout": 30}
        self.engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        Base.metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # --- sources -----------------------------------------------------------
    def source_state(self, name: str) -> SourceState | None:
        with self.sessions() as s:
            return s.get(SourceState, name)

    def record_source_error(self, name: str, url: str, error: str, now: datetime) -> None:
        with self.sessions.begin() as s:
            state = s.get(SourceState, name) or SourceState(name=name, url=url, consecutive_errors=0)
            state.url = url
            state.last_polled_at = now
            state.last_error = error
            state.consecutive_errors = (state.consecutive_errors or 0) + 1
            s.add(state)

    def source_states(self) -> list[SourceState]:
        with self.sessions() as s:
            return list(s.scalars(select(SourceState).order_by(SourceState.name)))

    # --- dedupe ------------------------------------------------------------
    def unseen(self, source: str, item_ids: Iterable[str]) -> set[str]:
        ids = set(item_ids)
        if not ids:
            return set()
        seen: set[str] = set()
        with self.sessions() as s:
            chunk = list(ids)
            for i in range(0, len(chunk), 500):
                part = chunk[i:i + 500]
                seen.update(s.scalars(select(SeenArticle.article_id).where(
                    SeenArticle.source == source, SeenArticle.article_id.in_(part))))
        return ids - seen

    # --- the poll's one commit ---------------------------------------------
    def commit_poll(self, *, source: str, url: str, etag: str | None, last_modified: str | None,
                    seen_ids: Iterable[str], deliveries: list[NewDelivery], now: datetime,
                    country_articles: Iterable[tuple] = ()) -> list[int]:
        """Write the deliveries, mark the items seen and save the source state,
        all in one transaction: an item is never seen without its deliveries.
        Returns the ids of deliveries created now (existing keys are skipped,
        so a re-poll after a crash duplicates nothing)."""
        with self.sessions.begin() as s:
            rows = add_deliveries(s, deliveries, now)
            seen_ids = set(seen_ids)
            already = set(s.scalars(select(SeenArticle.article_id).where(
                SeenArticle.source == source, SeenArticle.article_id.in_(list(seen_ids)))))
            s.add_all(SeenArticle(source=source, article_id=i, seen_at=now) for i in seen_ids - already)
            tagged = {article.id: (article, countries) for article, countries in country_articles}
            if tagged:
                # One SELECT for the batch: merge() would query once per article.
                known = set(s.scalars(select(StoredArticle.article_id).where(
                    StoredArticle.source == source, StoredArticle.article_id.in_(list(tagged)))))
                s.add_all(StoredArticle(source=source, article_id=a.id, title=a.title, link=a.link,
                                        published=a.published, stored_at=now,
                                        countries="," + ",".join(countries) + ",")
                          for a, countries in tagged.values() if a.id not in known)
            mark_source_ok(s, source, url, etag, last_modified, now)
            s.flush()
            return [r.id for r in rows]

    def recent_articles(self, country: str, limit: int = 5) -> list[StoredArticle]:
        """The newest stored articles about `country` (KZ, KG, ...)."""
        with self.sessions() as s:
            return list(s.scalars(
                select(StoredArticle).where(StoredArticle.countries.contains(f",{country},"))
                .order_by(StoredArticle.stored_at.desc(), StoredArticle.published.desc()).limit(limit)))

    # --- deliveries ----------------------------------------------------------
    def mark_enqueued(self, ids: list[int], now: datetime) -> None:
        if ids:
            with self.sessions.begin() as s:
                s.execute(update(Delivery).where(Delivery.id.in_(ids)).values(enqueued_at=now))

    def claim(self, delivery_id: int, now: datetime, lease: timedelta) -> Delivery | None:
        """Take a due delivery for one attempt. Only one claimant wins: the
        UPDATE's WHERE is the lock. A claim whose lease ran out (a killed
        worker) can be taken again."""
        with self.sessions.begin() as s:
            result = s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.next_attempt_at <= now,
                       sa.or_(Delivery.status.in_(("pending", "retrying")),
                              sa.and_(Delivery.status == "sending", Delivery.lease_until < now)))
                .values(status="sending", lease_until=now + lease, attempts=Delivery.attempts + 1)
            )
            if result.rowcount != 1:
                return None
            return s.get(Delivery, delivery_id)

    def record_attempt(self, delivery_id: int, *, outcome: str, now: datetime,
                       error: str | None = None, retry_at: datetime | None = None) -> None:
        status = {"sent": "sent", "retry": "retrying", "failed": "failed"}[outcome]
        with self.sessions.begin() as s:
            s.add(Attempt(delivery_id=delivery_id, at=now, outcome=outcome, error=error))
            values: dict = {"status": status, "lease_until": None, "last_error": error}
            if outcome == "sent":
                values["delivered_at"] = now
            if retry_at is not None:
                values["next_attempt_at"] = retry_at
                values["enqueued_at"] = None
            s.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def due(self, now: datetime, requeue_after: timedelta, limit: int = 1000) -> list[int]:
        """Deliveries that should be on the queue but may not be: never enqueued,
        enqueued long ago without an outcome (lost with a Redis restart), due
        for a retry, or claimed by a worker whose lease ran out."""
        stale = now - requeue_after
        with self.sessions() as s:
            return list(s.scalars(
                select(Delivery.id).where(
                    Delivery.next_attempt_at <= now,
                    sa.or_(
                        sa.and_(Delivery.status.in_(("pending", "retrying")),
                                sa.or_(Delivery.enqueued_at.is_(None), Delivery.enqueued_at < stale)),
                        sa.and_(Delivery.status == "sending", Delivery.lease_until < now),
                    ),
                ).order_by(Delivery.id).limit(limit)
            ))

    def delivery_counts(self) -> dict[str, int]:
        with self.sessions() as s:
            rows = s.execute(select(Delivery.status, sa.func.count()).group_by(Delivery.status))
            return {status: n for status, n in rows}

    def recent_failures(self, limit: int = 5) -> list[Delivery]:
        with self.sessions() as s:
            return list(s.scalars(select(Delivery).where(Delivery.status == "failed")
                                  .order_by(Delivery.id.desc()).limit(limit)))

    def delivery(self, delivery_id: int) -> Delivery | None:
        with self.sessions() as s:
            return s.get(Delivery, delivery_id)

    def deliveries(self, status: str | None = None) -> list[Delivery]:
        with self.sessions() as s:
            q = select(Delivery).order_by(Delivery.id)
            if status:
                q = q.where(Delivery.status == status)
            return list(s.scalars(q))

    def attempts(self, delivery_id: int) -> list[Attempt]:
        with self.sessions() as s:
            return list(s.scalars(select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.id)))


def add_deliveries(s: Session, deliveries: Iterable[NewDelivery], now: datetime) -> list[Delivery]:
    """Insert outbox rows inside the caller's transaction. An idempotency key
    that exists already (or twice in the batch) is skipped, so a re-poll after
    a crash writes nothing twice."""
    deliveries = list(deliveries)
    keys = [d.idempotency_key for d in deliveries]
    existing = set(s.scalars(select(Delivery.idempotency_key).where(
        Delivery.idempotency_key.in_(keys)))) if keys else set()
    rows = []
    for d in deliveries:
        if d.idempotency_key in existing:
            continue
        existing.add(d.idempotency_key)
        rows.append(Delivery(idempotency_key=d.idempotency_key, item_source=d.item_source,
                             item_id=d.item_id, subscription=d.subscription, channel=d.channel,
                             payload=d.payload, status="pending", attempts=0, created_at=now,
                             next_attempt_at=now))
    s.add_all(rows)
    return rows


def mark_source_ok(s: Session, source: str, url: str, etag: str | None,
                   last_modified: str | None, now: datetime) -> None:
    """A successful poll: keep the validators for the next conditional GET."""
    state = s.get(SourceState, source) or SourceState(name=source, url=url)
    state.url, state.etag, state.last_modified = url, etag, last_modified
    state.last_polled_at = state.last_ok_at = now
    state.last_error, state.consecutive_errors = None, 0
    s.add(state)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
