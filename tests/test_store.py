"""The store's promises, on SQLite and (when DATABASE_URL is set) PostgreSQL."""
from datetime import datetime, timedelta, timezone

import pytest

from services.article import Article
from services.store.db import NewDelivery

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
