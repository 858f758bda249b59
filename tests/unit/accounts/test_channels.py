"""Channels: target checks, secrets, the confirmation email, scoping."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from services.accounts import channels, tenants
from services.accounts.errors import Invalid, NotFound
from services.delivery.channels import webhook
from services.settings import Settings
from services.store.models import ChannelType, DeliveryStatus

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
STRICT = Settings(allow_private_targets=False, public_url="https://alerts.example.com/")


@pytest.fixture
def tenant(store):
    return tenants.create(store, "acme", T0).tenant


# (url, words in the message)
BAD_URLS = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://10.0.0.5/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("ftp://example.com/x", "unsupported target"),
    ("not a url", "unsupported target"),
    ("", "is required"),
]


@pytest.mark.parametrize("url, said", BAD_URLS)
def test_a_webhook_on_a_private_or_odd_target_is_refused(store, tenant, url, said):
    with pytest.raises(Invalid) as err:
        channels.create_webhook(store, tenant.id, url, "json", STRICT, T0)
    assert err.value.field == "url" and said in err.value.message
    assert channels.list_(store, tenant.id) == []


def test_private_targets_when_the_operator_allows_them(store, tenant):
    allowed = STRICT.model_copy(update={"allow_private_targets": True})
    assert channels.create_webhook(store, tenant.id, "http://127.0.0.1:8080/hook", "json", allowed, T0).secret


def test_an_unknown_format_is_refused(store, tenant):
    with pytest.raises(Invalid) as err:
        channels.create_webhook(store, tenant.id, "https://hooks.example.com/x", "xml", STRICT, T0)
    assert err.value.field == "format"


def test_each_webhook_gets_its_own_standard_secret(store, tenant):
    a = channels.create_webhook(store, tenant.id, "https://hooks.example.com/a", "json", STRICT, T0)
    b = channels.create_webhook(store, tenant.id, "https://hooks.example.com/b", "json", STRICT, T0)
    assert a.secret != b.secret
    for made in (a, b):
        assert len(webhook.secret_key(made.secret)) == 24  # whsec_ + base64 of 24 random bytes
        assert made.channel.type == ChannelType.WEBHOOK and made.channel.confirmed_at == T0


# (address, accepted)
ADDRESSES = [("desk@example.com", True), ("  desk@example.com ", True), ("desk", False),
             ("desk@example.com\r\nBcc: x@evil.test", False), ("", False)]


@pytest.mark.parametrize("address, ok", ADDRESSES)
def test_email_addresses(store, tenant, address, ok):
    if ok:
        made = channels.create_email(store, tenant.id, address, STRICT, T0)
        assert made.channel.target == "mailto:desk@example.com"
    else:
        with pytest.raises(Invalid) as err:
            channels.create_email(store, tenant.id, address, STRICT, T0)
        assert err.value.field == "address"


def test_an_email_channel_waits_for_its_link(store, tenant):
    made = channels.create_email(store, tenant.id, "desk@example.com", STRICT, T0)
    assert made.channel.confirmed_at is None
    mail = store.delivery(made.confirm_delivery)
    assert (mail.channel, mail.status, mail.tenant_id, mail.channel_id) == (
        "mailto:desk@example.com", DeliveryStatus.PENDING, tenant.id, made.channel.id)
    link = re.search(r"https://alerts\.example\.com/v1/channels/confirm/(\S+)", mail.payload["text"])
    assert link, mail.payload["text"]
    assert link.group(0) in mail.payload["html"]
    token = link.group(1)
    assert made.channel.confirm_token_hash not in mail.payload["text"]  # the hash is not the token
    later = T0 + timedelta(hours=1)
    assert channels.confirm(store, token, later).confirmed_at == later
    assert channels.get(store, tenant.id, made.channel.id).confirmed_at == later
    with pytest.raises(NotFound):  # a link works once
        channels.confirm(store, token, later)
    with pytest.raises(NotFound):
        channels.confirm(store, "made-up", later)


def test_an_operator_made_email_channel_is_confirmed_and_sends_no_link(store, tenant):
    made = channels.create_email(store, tenant.id, "desk@example.com", STRICT, T0, confirmed=True)
    assert made.channel.confirmed_at == T0 and made.confirm_delivery is None
    assert store.deliveries() == []


def test_another_tenants_channel_is_not_found(store, tenant):
    made = channels.create_webhook(store, tenant.id, "https://hooks.example.com/a", "json", STRICT, T0).channel
    other = tenants.create(store, "other", T0).tenant
    with pytest.raises(NotFound):
        channels.get(store, other.id, made.id)
    with pytest.raises(NotFound):
        channels.delete_(store, other.id, made.id, T0)
    assert channels.list_(store, other.id) == []
    assert [c.id for c in channels.list_(store, tenant.id)] == [made.id]
    channels.delete_(store, tenant.id, made.id, T0)
    assert channels.list_(store, tenant.id) == []
