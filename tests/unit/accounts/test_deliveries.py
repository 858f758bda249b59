"""A tenant's deliveries: listing, redaction, replay."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.accounts import deliveries, tenants
from services.accounts.errors import NotFound
from services.store.db import NewDelivery
from services.store.models import AttemptOutcome, DeliveryStatus

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
HOOK = "https://user:pw@hooks.example.com/services/T0/B0/Xy7aB1cD2eF3gH4iJ5kL6m9Q"


def write(store, tenant_id, n, sub="sub_1"):
    rows = [NewDelivery(f"k{tenant_id}{i}{sub}", "wire", f"a{i}", "cpc", HOOK, {"x": i}, tenant_id=tenant_id,
                        subscription_id=sub, channel_id="ch_1") for i in range(n)]
    return store.commit_poll(source="wire", url="http://wire", etag=None, last_modified=None, seen_ids=[],
                             deliveries=rows, now=T0)


def test_pages_newest_first_filtered_by_subscription(store):
    acme = tenants.create(store, "acme", T0).tenant
    ids_a = write(store, acme.id, 5)
    ids_b = write(store, acme.id, 2, sub="sub_2")
    got, cursor = deliveries.page(store, acme.id, limit=4)
    rest, end = deliveries.page(store, acme.id, after=cursor, limit=4)
    assert [d.id for d in got + rest] == sorted(ids_a + ids_b, reverse=True) and end is None
    only = deliveries.page(store, acme.id, subscription_id="sub_2")[0]
    assert [d.id for d in only] == sorted(ids_b, reverse=True)


def test_a_target_and_error_are_shown_redacted(store):
    acme = tenants.create(store, "acme", T0).tenant
    [i] = write(store, acme.id, 1)
    store.claim(i, T0, lease=timedelta(seconds=30))
    store.record_attempt(i, outcome=AttemptOutcome.FAILED, now=T0, error=f"POST {HOOK} answered 410 Gone")
    shown = deliveries.to_json(deliveries.get(store, acme.id, i))
    text = repr(shown)
    assert "pw" not in text and "Xy7aB1cD2eF3gH4iJ5kL6m9Q" not in text
    assert shown["status"] == "failed" and shown["attempts"] == 1 and "410 Gone" in shown["last_error"]


def test_replay_puts_it_back_with_a_fresh_schedule(store):
    acme = tenants.create(store, "acme", T0).tenant
    [i] = write(store, acme.id, 1)
    store.claim(i, T0, lease=timedelta(seconds=30))
    store.record_attempt(i, outcome=AttemptOutcome.FAILED, now=T0, error="gave up after 11 attempts: 503")
    later = T0 + timedelta(days=2)
    row = deliveries.replay(store, acme.id, i, later)
    assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.PENDING, 0, later)
    assert store.due(later, timedelta(minutes=2)) == [i]  # the sweeper sends it
    assert len(store.attempts(i)) == 1  # its history is kept


def test_a_delivery_being_sent_is_not_replayed_twice(store):
    acme = tenants.create(store, "acme", T0).tenant
    [i] = write(store, acme.id, 1)
    store.claim(i, T0, lease=timedelta(seconds=30))
    assert deliveries.replay(store, acme.id, i, T0).status == DeliveryStatus.SENDING


def test_another_tenants_delivery_is_not_found(store):
    acme = tenants.create(store, "acme", T0).tenant
    other = tenants.create(store, "other", T0).tenant
    [i] = write(store, acme.id, 1)
    for call in (lambda: deliveries.get(store, other.id, i), lambda: deliveries.replay(store, other.id, i, T0),
                 lambda: deliveries.attempts(store, other.id, i)):
        with pytest.raises(NotFound):
            call()
    assert deliveries.page(store, other.id) == ([], None)
