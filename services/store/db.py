"""The store: every read and write the pipeline and the workers need, each one
short transaction. Callers pass `now`; the store never reads the clock."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timedelta
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy import event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from services.store.models import (GAVE_UP, Attempt, AttemptOutcome, Base, Channel, Delivery, DeliveryStatus,
                                   SeenArticle, SourceState, StoredArticle)

# Deliveries a worker may claim (besides a `sending` one whose lease ran out).
CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
STATUS_AFTER = {AttemptOutcome.SENT: DeliveryStatus.SENT, AttemptOutcome.RETRY: DeliveryStatus.RETRYING,
                AttemptOutcome.FAILED: DeliveryStatus.FAILED}


@dataclass(frozen=True)
class NewDelivery:
    idempotency_key: str
    item_source: str
    item_id: str
    subscription: str
    channel: str
    payload: dict
    # A tenant's subscription (the API's) and channel; None for the config file's.
    tenant_id: str | None = None
    subscription_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class GivenUp:
    """A delivery that was still failing when its retry schedule ran out."""

    id: int
    subscription: str
    channel: str
    attempts: int
    at: datetime | None  # its last attempt
    error: str | None


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

    def create_schema(self, tries: int = 5) -> None:
        """The models' tables, unversioned: for benchmarks and scripts only.
        Deployments get theirs from `tulpar db upgrade` (schema.upgrade), and
        every process that serves refuses a database without its stamp."""
        # Two processes starting on a fresh database (two `tulpar poll --once`,
        # a worker and a poller) both find a table missing and both create it;
        # the loser's CREATE fails. The tables exist then, and create_all skips
        # existing ones, so trying again settles it.
        for n in range(1, tries + 1):
            try:
                Base.metadata.create_all(self.engine)
                return
            except sa.exc.DatabaseError:
                if n == tries:
                    raise
                time.sleep(0.05 * n)

    def dispose(self) -> None:
        self.engine.dispose()

    # --- sources -----------------------------------------------------------
    def source_state(self, name: str) -> SourceState | None:
        with self.sessions() as s:
            return s.get(SourceState, name)

    def record_source_error(self, name: str, url: str, error: str, now: datetime) -> None:
        # An upsert, not read-then-write: two pollers failing on a source that
        # has no row yet would both INSERT it.
        values = {"url": url, "last_polled_at": now, "last_error": error}
        stmt = _insert(self.engine, SourceState).values(name=name, consecutive_errors=1, **values)
        with self.sessions.begin() as s:
            s.execute(stmt.on_conflict_do_update(
                index_elements=[SourceState.name],
                set_={**values, "consecutive_errors": sa.func.coalesce(SourceState.consecutive_errors, 0) + 1}))

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
        # country_articles: (article, country codes) for each new article to
        # keep -- all of them from a news poll, an empty tuple when it is
        # about none of our countries.
        """Write the deliveries, mark the items seen and save the source state,
        all in one transaction: an item is never seen without its deliveries.
        Returns the ids of deliveries created now (existing keys are skipped,
        so a re-poll after a crash duplicates nothing).

        Race-safe: every insert is ON CONFLICT DO NOTHING (the source state an
        upsert), so when another poller committed the same items first -- after
        we read them as unseen -- its rows win and this commit adds the rest."""
        with self.sessions.begin() as s:
            ids = add_deliveries(s, deliveries, now)
            seen = [{"source": source, "article_id": i, "seen_at": now} for i in dict.fromkeys(seen_ids)]
            if seen:
                s.execute(_insert(s, SeenArticle).on_conflict_do_nothing(), seen)
            kept = {article.id: (article, countries) for article, countries in country_articles}
            if kept:
                s.execute(_insert(s, StoredArticle).on_conflict_do_nothing(), [
                    {"source": source, "article_id": a.id, "title": a.title, "link": a.link,
                     "published": a.published, "stored_at": now, "summary": a.summary,
                     "language": getattr(a, "lang", None),
                     "countries": "," + ",".join(countries) + "," if countries else ""}
                    for a, countries in kept.values()])
            mark_source_ok(s, source, url, etag, last_modified, now)
            return [r.id for r in ids]

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
                       sa.or_(Delivery.status.in_(CLAIMABLE),
                              sa.and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now)))
                .values(status=DeliveryStatus.SENDING, lease_until=now + lease, attempts=Delivery.attempts + 1)
            )
            if result.rowcount != 1:
                return None
            return s.get(Delivery, delivery_id)

    def record_attempt(self, delivery_id: int, *, outcome: AttemptOutcome | str, now: datetime,
                       error: str | None = None, retry_at: datetime | None = None) -> None:
        outcome = AttemptOutcome(outcome)
        status = STATUS_AFTER[outcome]
        with self.sessions.begin() as s:
            s.add(Attempt(delivery_id=delivery_id, at=now, outcome=outcome, error=error))
            values: dict = {"status": status, "lease_until": None, "last_error": error}
            if outcome == AttemptOutcome.SENT:
                values["delivered_at"] = now
            if retry_at is not None:
                values["next_attempt_at"] = retry_at
                values["enqueued_at"] = None
            s.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

    def hold_back(self, channel: str, until: datetime, *, besides: int) -> int:
        """Move the channel's other waiting deliveries (pending or retrying,
        due before `until`) to `until`, in one UPDATE; attempts are not
        counted. Their copies on the queue then find them not due (claim
        skips them) and, enqueued_at cleared, the sweeper enqueues them again
        when `until` comes. Returns how many were held back."""
        with self.sessions.begin() as s:
            result = s.execute(
                update(Delivery)
                .where(Delivery.channel == channel, Delivery.id != besides,
                       Delivery.status.in_(CLAIMABLE), Delivery.next_attempt_at < until)
                .values(next_attempt_at=until, enqueued_at=None))
            return result.rowcount

    def due(self, now: datetime, requeue_after: timedelta, limit: int = 1000, *,
            lost_before: datetime | None = None, fresh_grace: timedelta = timedelta(0)) -> list[int]:
        """Deliveries that should be on the queue but may not be: never enqueued,
        enqueued long ago without an outcome (lost with a Redis restart), due
        for a retry, or claimed by a worker whose lease ran out.

        "Long ago" is before `lost_before` when given (the sweeper's judgement
        from the queue itself, services/delivery/outbox.py), else before
        now - requeue_after. A delivery never enqueued and never attempted
        is due once created `fresh_grace` ago (its poll may be enqueueing it
        right now); one put back for a retry or held back, at once."""
        stale = lost_before if lost_before is not None else now - requeue_after
        never = Delivery.enqueued_at.is_(None)
        if fresh_grace:
            never = sa.and_(never, sa.or_(Delivery.attempts > 0, Delivery.created_at <= now - fresh_grace))
        with self.sessions() as s:
            return list(s.scalars(
                select(Delivery.id).where(
                    Delivery.next_attempt_at <= now,
                    sa.or_(
                        sa.and_(Delivery.status.in_(CLAIMABLE),
                                sa.or_(never, Delivery.enqueued_at < stale)),
                        sa.and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now),
                    ),
                ).order_by(Delivery.id).limit(limit)
            ))

    def delivery_counts(self) -> dict[DeliveryStatus, int]:
        with self.sessions() as s:
            rows = s.execute(select(Delivery.status, sa.func.count()).group_by(Delivery.status))
            return {status: n for status, n in rows}

    def recent_failures(self, limit: int = 5) -> list[Delivery]:
        with self.sessions() as s:
            return list(s.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)
                                  .order_by(Delivery.id.desc()).limit(limit)))

    def given_up(self, limit: int = 5) -> tuple[int, list[GivenUp]]:
        """How many deliveries were given up (failed when the retry schedule
        ran out, as opposed to a permanent error), and the `limit` most recent,
        newest first by their last attempt."""
        gave_up = sa.and_(Delivery.status == DeliveryStatus.FAILED,
                          Delivery.last_error.startswith(GAVE_UP, autoescape=True))
        last = (select(Attempt.delivery_id, sa.func.max(Attempt.at).label("at"))
                .group_by(Attempt.delivery_id).subquery())
        with self.sessions() as s:
            count = s.scalar(select(sa.func.count()).select_from(Delivery).where(gave_up)) or 0
            rows = s.execute(
                select(Delivery.id, Delivery.subscription, Delivery.channel, Delivery.attempts,
                       last.c.at, Delivery.last_error)
                .outerjoin(last, last.c.delivery_id == Delivery.id).where(gave_up)
                .order_by(last.c.at.desc().nulls_last(), Delivery.id.desc()).limit(limit))
            return count, [GivenUp(*row) for row in rows]

    def channel(self, channel_id: str) -> Channel | None:
        """A tenant's channel by id (the outbox's look-up at send time: its
        webhook secret is read here, never copied into a delivery)."""
        with self.sessions() as s:
            return s.get(Channel, channel_id)

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


def add_deliveries(s: Session, deliveries: Iterable[NewDelivery], now: datetime) -> list[sa.Row]:
    """Insert outbox rows inside the caller's transaction; returns the rows
    created (each with its `.id`). An idempotency key that exists already (or
    twice in the batch) is skipped, so a re-poll after a crash writes nothing
    twice -- and ON CONFLICT, not a SELECT before, so that a key another
    transaction inserts meanwhile is skipped too instead of failing ours."""
    rows = {}
    for d in deliveries:
        rows.setdefault(d.idempotency_key, {
            "idempotency_key": d.idempotency_key, "item_source": d.item_source, "item_id": d.item_id,
            "subscription": d.subscription, "channel": d.channel, "payload": d.payload,
            "status": DeliveryStatus.PENDING, "attempts": 0, "created_at": now, "next_attempt_at": now,
            "tenant_id": d.tenant_id, "subscription_id": d.subscription_id, "channel_id": d.channel_id})
    if not rows:
        return []
    stmt = _insert(s, Delivery).on_conflict_do_nothing(index_elements=[Delivery.idempotency_key])
    created = s.execute(stmt.returning(Delivery.id), list(rows.values())).all()
    return sorted(created, key=lambda r: r.id)


def mark_source_ok(s: Session, source: str, url: str, etag: str | None,
                   last_modified: str | None, now: datetime) -> None:
    """A successful poll: keep the validators for the next conditional GET.
    An upsert: a racing poller may have created the row since we looked."""
    values = {"url": url, "etag": etag, "last_modified": last_modified, "last_polled_at": now,
              "last_ok_at": now, "last_error": None, "consecutive_errors": 0}
    stmt = _insert(s, SourceState).values(name=source, **values)
    s.execute(stmt.on_conflict_do_update(index_elements=[SourceState.name], set_=values))


def _insert(bind: Session | sa.Engine, table):
    """An INSERT that knows ON CONFLICT: the two backends we run on both have it."""
    dialect = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
