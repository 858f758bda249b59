"""Subscriptions: checks, tenant scoping, the change log, pages."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from services.accounts import channels, subscriptions, tenants
from services.accounts.errors import Conflict, Invalid, NotFound
from services.settings import Settings
from services.store.models import SubscriptionChange

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
SETTINGS = Settings(allow_private_targets=False)


@pytest.fixture
def acme(store):
    tenant = tenants.create(store, "acme", T0).tenant
    hook = channels.create_webhook(store, tenant.id, "https://hooks.example.com/acme", "json", SETTINGS, T0)
    return tenant, hook.channel


def changes(store) -> list[str]:
    with store.sessions() as s:
        return list(s.scalars(select(SubscriptionChange.subscription_id).order_by(SubscriptionChange.seq)))


# (query, the start of the message, column or None)
BAD_QUERIES = [
    ("(tariff OR", "OR without a term after it", 9),
    ("tariff AND", "AND without a term after it", 8),
    ('"unclosed', "unbalanced quote", 1),
    ("topic:nosuch", "unknown", 1),
    ("", "a query is required", None),
    ("x " * 1001, "the query is 2002 characters; at most 2000", None),
    (" OR ".join(f"w{i}" for i in range(120)), "the query is too complex: 121 terms and operators", None),
]


@pytest.mark.parametrize("query, message, column", BAD_QUERIES, ids=[q[:20] for q, _, _ in BAD_QUERIES])
def test_a_bad_query_is_invalid_with_the_rules_check_message(acme, store, query, message, column):
    tenant, hook = acme
    with pytest.raises(Invalid) as err:
        subscriptions.create(store, tenant.id, "s", [hook.id], T0, query=query)
    assert err.value.field == "query"
    assert message in err.value.message
    assert err.value.extra.get("column") == column
    assert changes(store) == []  # nothing written


def test_the_rule_message_is_the_one_tulpar_rules_check_prints(acme, store, capsys):
    from services.cli import main

    tenant, hook = acme
    assert main(["rules", "check", "cpc AND (halt OR"]) == 2
    printed = capsys.readouterr().err.splitlines()[0]
    with pytest.raises(Invalid) as err:
        subscriptions.create(store, tenant.id, "s", [hook.id], T0, query="cpc AND (halt OR")
    assert printed == f"tulpar rules check: {err.value.message}"


# (fx rule, field named)
BAD_FX = [
    ({"pair": "KZTUSD", "change_pct": 1}, "fx.pair"),
    ({"pair": "KZT/USD", "change_pct": 1, "window": "1.5d"}, "fx.window"),
    ({"pair": "KZT/USD"}, "fx"),
    ({"pair": "KZT/USD", "change_pct": 1, "name": "x"}, "fx.name"),
    ("KZT/USD", "fx"),
]


@pytest.mark.parametrize("fx, field", BAD_FX, ids=[str(f) for f, _ in BAD_FX])
def test_a_bad_fx_rule_is_invalid(acme, store, fx, field):
    tenant, hook = acme
    with pytest.raises(Invalid) as err:
        subscriptions.create(store, tenant.id, "s", [hook.id], T0, fx=fx)
    assert err.value.field == field


def test_exactly_one_of_query_and_fx(acme, store):
    tenant, hook = acme
    for kwargs in ({}, {"query": "cpc", "fx": {"pair": "KZT/USD", "above": 1}}):
        with pytest.raises(Invalid, match="exactly one"):
            subscriptions.create(store, tenant.id, "s", [hook.id], T0, **kwargs)


def test_channels_must_be_the_tenants_own(acme, store):
    tenant, hook = acme
    other = tenants.create(store, "other", T0).tenant
    theirs = channels.create_webhook(store, other.id, "https://hooks.example.com/o", "json", SETTINGS, T0).channel
    cases = [([], "channels"), ([theirs.id], "channels[0]"), ([hook.id, "ch_nope"], "channels[1]"),
             ([hook.id, 3], "channels[1]"), ("ch_x", "channels")]
    for ids, field in cases:
        with pytest.raises(Invalid) as err:
            subscriptions.create(store, tenant.id, "s", ids, T0, query="cpc")
        assert err.value.field == field, ids


def test_create_get_update_delete_each_logged_once(acme, store):
    tenant, hook = acme
    mail = channels.create_email(store, tenant.id, "desk@example.com", SETTINGS, T0).channel
    made = subscriptions.create(store, tenant.id, "cpc", [hook.id, hook.id], T0, query="cpc AND halt*")
    assert made.channels == [hook.id]  # duplicates folded
    assert subscriptions.get(store, tenant.id, made.row.id).to_json()["query"] == "cpc AND halt*"
    later = T0 + timedelta(minutes=1)
    changed = subscriptions.update(store, tenant.id, made.row.id, later, query="cpc", channel_ids=[mail.id, hook.id],
                                   paused=True)
    assert (changed.row.query, changed.channels, changed.row.paused) == ("cpc", [mail.id, hook.id], True)
    assert changed.row.updated_at == later and changed.row.created_at == T0
    subscriptions.delete_(store, tenant.id, made.row.id, later)
    with pytest.raises(NotFound):
        subscriptions.get(store, tenant.id, made.row.id)
    assert changes(store) == [made.row.id] * 3


def test_a_news_subscription_keeps_its_kind(acme, store):
    tenant, hook = acme
    news = subscriptions.create(store, tenant.id, "n", [hook.id], T0, query="cpc")
    fx = subscriptions.create(store, tenant.id, "f", [hook.id], T0, fx={"pair": "KZT/USD", "above": 0.01})
    with pytest.raises(Invalid, match="news subscription has no fx"):
        subscriptions.update(store, tenant.id, news.row.id, T0, fx={"pair": "KZT/USD", "above": 1})
    with pytest.raises(Invalid, match="FX subscription has no query"):
        subscriptions.update(store, tenant.id, fx.row.id, T0, query="cpc")


def test_names_are_unique_per_tenant_only(acme, store):
    tenant, hook = acme
    subscriptions.create(store, tenant.id, "cpc", [hook.id], T0, query="cpc")
    with pytest.raises(Conflict):
        subscriptions.create(store, tenant.id, "cpc", [hook.id], T0, query="halt")
    other = tenants.create(store, "other", T0).tenant
    theirs = channels.create_webhook(store, other.id, "https://hooks.example.com/o", "json", SETTINGS, T0).channel
    subscriptions.create(store, other.id, "cpc", [theirs.id], T0, query="cpc")
    second = subscriptions.create(store, tenant.id, "second", [hook.id], T0, query="cpc")
    with pytest.raises(Conflict):
        subscriptions.update(store, tenant.id, second.row.id, T0, name="cpc")


def test_another_tenants_subscription_is_not_found_everywhere(acme, store):
    tenant, hook = acme
    made = subscriptions.create(store, tenant.id, "cpc", [hook.id], T0, query="cpc")
    other = tenants.create(store, "other", T0).tenant
    for call in (lambda: subscriptions.get(store, other.id, made.row.id),
                 lambda: subscriptions.update(store, other.id, made.row.id, T0, paused=True),
                 lambda: subscriptions.delete_(store, other.id, made.row.id, T0)):
        with pytest.raises(NotFound):
            call()
    assert subscriptions.page(store, other.id) == ([], None)
    assert subscriptions.get(store, tenant.id, made.row.id).row.paused is False


def test_pages_cover_every_subscription_once(acme, store):
    tenant, hook = acme
    made = {subscriptions.create(store, tenant.id, f"s{i}", [hook.id], T0, query=f"w{i}").row.id for i in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        items, cursor = subscriptions.page(store, tenant.id, cursor, limit=3)
        seen += [v.row.id for v in items]
        pages += 1
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == made
    with pytest.raises(Invalid) as err:
        subscriptions.page(store, tenant.id, "%%%")
    assert err.value.field == "cursor"


def test_deleting_a_channel_or_confirming_one_logs_its_subscriptions(acme, store):
    tenant, hook = acme
    made = channels.create_email(store, tenant.id, "desk@example.com", SETTINGS, T0)
    sub = subscriptions.create(store, tenant.id, "cpc", [hook.id, made.channel.id], T0, query="cpc")
    before = len(changes(store))
    channels.delete_(store, tenant.id, hook.id, T0)
    assert subscriptions.get(store, tenant.id, sub.row.id).channels == [made.channel.id]
    assert changes(store)[before:] == [sub.row.id]
