"""The store's promises, on SQLite and (when DATABASE_URL is set) PostgreSQL."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from services.news.article import Article
from services.store import Store
from services.store.db import NewDelivery, add_deliveries, mark_source_ok
from services.store.models import AttemptOutcome, DeliveryStatus, SeenArticle, StoredArticle

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
LEASE = timedelta(seconds=30)


def delivery(key: str, item: str = "a1") -> NewDelivery:
    return NewDelivery(key, "wire", item, "sub", "mailto:x@example.com", {"subject": "s", "text": "t", "html": "h"})


def commit(store, ids, deliveries, now=T0, countries=()):
    return store.commit_poll(source="wire", url="http://w/feed", etag='"e1"', last_modified=None,
                             seen_ids=ids, deliveries=deliveries, now=now, country_articles=countries)


def test_commit_marks_seen_writes_outbox_and_source_state(store):
    assert store.unseen("wire", ["a1", "a2"]) == {"a1", "a2"}
    [new_id] = commit(store, ["a1"], [delivery("k1")])
    assert store.unseen("wire", ["a1", "a2"]) == {"a2"}
    assert store.unseen("other-source", ["a1"]) == {"a1"}  # ids are per source
    assert store.delivery(new_id).status == "pending"
    assert store.source_state("wire").etag == '"e1"'


def test_same_idempotency_key_is_not_written_twice(store):
    first = commit(store, ["a1"], [delivery("k1")])
    again = commit(store, ["a1"], [delivery("k1"), delivery("k2", "a2")])
    assert len(first) == 1 and len(again) == 1
    assert [d.idempotency_key for d in store.deliveries()] == ["k1", "k2"]


def test_claim_is_exclusive_and_a_lost_lease_can_be_retaken(store):
    [i] = commit(store, ["a1"], [delivery("k1")])
    assert store.claim(i, T0, LEASE).attempts == 1
    assert store.claim(i, T0 + timedelta(seconds=5), LEASE) is None  # held
    retaken = store.claim(i, T0 + timedelta(seconds=31), LEASE)  # holder presumed dead
    assert retaken is not None and retaken.attempts == 2


@pytest.mark.parametrize("outcome,status", [("sent", "sent"), ("retry", "retrying"), ("failed", "failed")])
def test_record_attempt(store, outcome, status):
    [i] = commit(store, ["a1"], [delivery("k1")])
    store.claim(i, T0, LEASE)
    retry_at = T0 + timedelta(seconds=4) if outcome == "retry" else None
    store.record_attempt(i, outcome=outcome, now=T0, error=None if outcome == "sent" else "boom",
                         retry_at=retry_at)
    d = store.delivery(i)
    assert d.status == status and d.lease_until is None
    assert [a.outcome for a in store.attempts(i)] == [outcome]
    if outcome == "retry":
        assert store.claim(i, T0 + timedelta(seconds=1), LEASE) is None  # not due yet
        assert store.claim(i, T0 + timedelta(seconds=4), LEASE) is not None


def test_due_finds_what_should_be_on_the_queue(store):
    a, b, c, d = commit(store, ["a1"], [delivery(f"k{n}", f"a{n}") for n in range(4)])
    requeue = timedelta(seconds=60)
    store.mark_enqueued([b, c, d], T0)
    store.claim(c, T0, LEASE)  # in flight
    store.claim(d, T0, LEASE)
    store.record_attempt(d, outcome="sent", now=T0)
    assert store.due(T0, requeue) == [a]  # never enqueued
    later = T0 + timedelta(seconds=61)
    assert store.due(later, requeue) == [a, b, c]  # b lost with the queue, c's lease ran out
    assert d not in store.due(later + timedelta(days=1), requeue)


def test_datetimes_come_back_aware_utc(store):
    [i] = commit(store, ["a1"], [delivery("k1")])
    created = store.delivery(i).created_at
    assert created == T0 and created.tzinfo is not None


def test_country_articles_newest_first(store):
    def art(n, hours):
        return Article("wire", f"a{n}", f"Story {n}", "", f"http://w/{n}", T0 + timedelta(hours=hours))
    commit(store, ["a1"], [], T0, [(art(1, 0), ("KZ",))])
    commit(store, ["a2"], [], T0 + timedelta(hours=1), [(art(2, 1), ("KZ", "KG"))])
    commit(store, ["a3"], [], T0 + timedelta(hours=2), [(art(3, 2), ("UZ",))])
    assert [a.title for a in store.recent_articles("KZ")] == ["Story 2", "Story 1"]
    assert [a.title for a in store.recent_articles("KG")] == ["Story 2"]
    assert store.recent_articles("TM") == []


def test_statuses_are_enums_stored_as_the_same_strings(store):
    [i] = commit(store, ["a1"], [delivery("k1")])
    store.claim(i, T0, LEASE)
    store.record_attempt(i, outcome=AttemptOutcome.RETRY, now=T0, error="503", retry_at=T0 + LEASE)
    d = store.delivery(i)
    assert d.status is DeliveryStatus.RETRYING and store.attempts(i)[0].outcome is AttemptOutcome.RETRY
    assert store.delivery_counts() == {DeliveryStatus.RETRYING: 1}
    # The strings on disk are those older versions wrote and read.
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT status FROM delivery")).scalar() == "retrying"
        assert conn.execute(sa.text("SELECT outcome FROM attempt")).scalar() == "retry"
        conn.execute(sa.text("UPDATE delivery SET status = 'failed'"))
        conn.commit()
    assert store.delivery(i).status is DeliveryStatus.FAILED


def test_source_errors_count_up_and_a_good_poll_resets_them(store):
    for n in range(3):
        store.record_source_error("wire", "http://w/feed", f"boom {n}", T0 + timedelta(minutes=n))
    state = store.source_state("wire")
    assert (state.consecutive_errors, state.last_error) == (3, "boom 2")
    assert state.last_polled_at == T0 + timedelta(minutes=2) and state.last_ok_at is None
    commit(store, ["a1"], [], now=T0 + timedelta(hours=1))
    state = store.source_state("wire")
    assert (state.consecutive_errors, state.last_error, state.etag) == (0, None, '"e1"')
    assert state.last_ok_at == T0 + timedelta(hours=1)


def test_commit_poll_racing_another_poller_keeps_the_other_pollers_rows(db_url):
    """Another poller read the same items as unseen and is committing them
    when we commit: we wait for it, its rows win, ours add the rest -- no
    IntegrityError (what two `tulpar poll --once` at once used to hit)."""
    other, ours = Store(db_url), Store(db_url)
    other.create_schema()
    outcome: dict = {}

    def our_commit():
        try:
            outcome["ids"] = commit(ours, ["a1", "a2"], [delivery("k1"), delivery("k2", "a2")],
                                    countries=[(Article("wire", "a1", "T", "", "http://w/1", T0), ("KZ",))])
        except Exception as exc:  # reported below, with the test's own assertion
            outcome["error"] = exc

    with other.sessions.begin() as s:
        # The other poller's commit, written but not committed yet.
        [theirs] = add_deliveries(s, [delivery("k1")], T0)
        s.add(SeenArticle(source="wire", article_id="a1", seen_at=T0))
        s.add(StoredArticle(source="wire", article_id="a1", title="T", link="http://w/1", published=None,
                            stored_at=T0, countries=",KZ,"))
        mark_source_ok(s, "wire", "http://w/feed", '"e0"', None, T0)
        s.flush()
        racer = threading.Thread(target=our_commit)
        racer.start()
        racer.join(0.5)
        assert racer.is_alive()  # waiting for the other transaction, not failing
    racer.join(30)
    assert "error" not in outcome, outcome.get("error")
    [k2] = outcome["ids"]
    assert [(d.id, d.idempotency_key) for d in ours.deliveries()] == [(theirs.id, "k1"), (k2, "k2")]
    assert ours.unseen("wire", ["a1", "a2", "a3"]) == {"a3"}
    assert ours.source_state("wire").etag == '"e1"'  # ours committed last
    assert [a.title for a in ours.recent_articles("KZ")] == ["T"]
    other.dispose()
    ours.dispose()


def test_processes_creating_the_schema_at_once_all_succeed(db_url):
    stores = [Store(db_url) for _ in range(4)]
    start, errors = threading.Barrier(len(stores)), []

    def create(s):
        start.wait()
        try:
            s.create_schema()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert commit(stores[0], ["a1"], [delivery("k1")]) != []
    for s in stores:
        s.dispose()


def given_up(store, key, at, error, attempts=11):
    [i] = commit(store, [key], [delivery(key, key)], now=at)
    for n in range(attempts):
        store.claim(i, at + timedelta(hours=n), LEASE)
        last = n == attempts - 1
        store.record_attempt(i, outcome="failed" if last else "retry", now=at + timedelta(hours=n),
                             error=error if last else "503", retry_at=None if last else at + timedelta(hours=n + 1))
    return i


def test_given_up_lists_the_schedule_running_out_newest_first(store):
    old = given_up(store, "k-old", T0, "gave up after 3 attempts: webhook answered 503", attempts=3)
    new = given_up(store, "k-new", T0 - timedelta(days=1), "gave up after 5 attempts: connection refused",
                   attempts=5)
    given_up(store, "k-404", T0 + timedelta(days=1), "webhook answered 404 Not Found", attempts=1)
    [sent] = commit(store, ["s"], [delivery("k-sent", "s")])
    store.claim(sent, T0, LEASE)
    store.record_attempt(sent, outcome="sent", now=T0)

    count, recent = store.given_up()
    assert count == 2  # the 404 failed for good at once: not given up
    assert [(g.id, g.attempts, g.at) for g in recent] == [
        (old, 3, T0 + timedelta(hours=2)),               # its last attempt is the newest
        (new, 5, T0 - timedelta(days=1) + timedelta(hours=4))]
    assert recent[1].error == "gave up after 5 attempts: connection refused"
    assert (recent[0].subscription, recent[0].channel) == ("sub", "mailto:x@example.com")
    assert store.given_up(limit=1) == (2, recent[:1])
