"""A tenant's channels at send time, on real parts: a migrated store (SQLite;
PostgreSQL too when DATABASE_URL is set), the alert written by the news
pipeline for a subscription in the database, sent by the outbox through the
real channels to a loopback webhook receiver and SMTP sink. The webhook is
signed with the channel's own secret (checked with the standardwebhooks
package); a channel deleted after the alert was written fails it for good."""
from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services import polling
from services.accounts import channels, subscriptions, tenants
from services.accounts.live import Live
from services.config import Subscription
from services.delivery import outbox
from services.news import pipeline as news_pipeline
from services.news.article import Article
from services.settings import Settings
from services.store.models import AttemptOutcome, DeliveryStatus

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
CPC = Article("wire", "cpc-1", "CPC halts loadings", "Mooring damage.", "http://wire.test/1", None, "en")
OPERATOR_SECRET = "whsec_" + base64.b64encode(b"the operator's own key, not yours").decode()


@pytest.fixture
def desk(store, webhook_sink, mail_sink):
    settings = Settings(allow_private_targets=True, http_timeout=2.0, webhook_secret=OPERATOR_SECRET,
                        smtp_port=mail_sink.port, retry_schedule="1s")
    tenant = tenants.create(store, "acme", T0).tenant
    hook = channels.create_webhook(store, tenant.id, webhook_sink.url + "/acme", "json", settings, T0)
    return store, settings, tenant, hook


def write_alerts(store, settings, config=()) -> list[int]:
    """A poll's classify, route, render and commit for CPC, as a worker runs them."""
    live = Live(store, config)
    decided = news_pipeline.notices([CPC], live.subscriptions, store, T0)
    deliveries = polling.rendered(news_pipeline.PIPELINE, decided.notices, T0, settings.templates_dir)
    return store.commit_poll(source="wire", url="http://wire.test/feed", etag=None, last_modified=None,
                             seen_ids=[CPC.id], deliveries=deliveries, now=T0)


def clock():
    return T0 + timedelta(seconds=1)


def test_a_tenant_webhook_is_signed_with_its_channel_secret(desk, webhook_sink, caplog):
    store, settings, tenant, hook = desk
    sid = subscriptions.create(store, tenant.id, "cpc", [hook.channel.id], T0, query="cpc").row.id
    caplog.set_level(logging.DEBUG)
    [i] = write_alerts(store, settings)
    row = store.delivery(i)
    assert (row.tenant_id, row.subscription_id, row.channel_id, row.subscription) == (
        tenant.id, sid, hook.channel.id, "cpc")

    assert outbox.attempt(store, i, settings, clock) == AttemptOutcome.SENT
    [request] = webhook_sink.delivered()
    body = Webhook(hook.secret).verify(request["body"], request["headers"])
    assert body["subscription"] == "cpc" and body["article"]["title"] == "CPC halts loadings"
    with pytest.raises(WebhookVerificationError):  # not the operator's key
        Webhook(OPERATOR_SECRET).verify(request["body"], request["headers"])
    # The secret is read at send time: in no payload, row or log line.
    assert hook.secret not in json.dumps(row.payload) and hook.secret not in request["body"]
    assert hook.secret not in caplog.text and hook.secret[len("whsec_"):] not in caplog.text


def test_the_config_files_webhooks_keep_the_operator_secret(desk, webhook_sink):
    store, settings, tenant, hook = desk
    config = [Subscription("desk", (webhook_sink.url + "/desk",), query="cpc")]
    [i] = write_alerts(store, settings, config)
    row = store.delivery(i)
    assert (row.tenant_id, row.subscription_id, row.channel_id) == (None, None, None)
    assert row.idempotency_key == polling.idempotency_key("news", "wire", "cpc-1", "desk", webhook_sink.url + "/desk")
    assert outbox.attempt(store, i, settings, clock) == AttemptOutcome.SENT
    [request] = webhook_sink.delivered()
    assert Webhook(OPERATOR_SECRET).verify(request["body"], request["headers"])["subscription"] == "desk"


# (case, what happens between writing the alert and sending it, outcome, status, receiver requests)
def _delete_channel(store, tenant, hook):
    channels.delete_(store, tenant.id, hook.channel.id, T0)


def _delete_subscription(store, tenant, hook):
    [sub], _ = subscriptions.page(store, tenant.id)
    subscriptions.delete_(store, tenant.id, sub.row.id, T0)


def _pause(store, tenant, hook):
    [sub], _ = subscriptions.page(store, tenant.id)
    subscriptions.update(store, tenant.id, sub.row.id, T0, paused=True)


SEND_TIME = [
    ("the channel was deleted: failed for good, nothing sent", _delete_channel, AttemptOutcome.FAILED,
     DeliveryStatus.FAILED, 0),
    # The alert was written while the subscription was live: it goes out.
    ("the subscription was deleted: still sent", _delete_subscription, AttemptOutcome.SENT, DeliveryStatus.SENT, 1),
    ("the subscription was paused: still sent", _pause, AttemptOutcome.SENT, DeliveryStatus.SENT, 1),
]


@pytest.mark.parametrize("case, meanwhile, outcome, status, requests", SEND_TIME, ids=[c[0] for c in SEND_TIME])
def test_what_happened_since_the_alert_was_written(desk, webhook_sink, case, meanwhile, outcome, status,
                                                   requests):
    store, settings, tenant, hook = desk
    subscriptions.create(store, tenant.id, "cpc", [hook.channel.id], T0, query="cpc")
    [i] = write_alerts(store, settings)
    meanwhile(store, tenant, hook)
    assert outbox.attempt(store, i, settings, clock) == outcome
    row = store.delivery(i)
    assert (row.status, row.attempts, len(webhook_sink.requests)) == (status, 1, requests)
    if status == DeliveryStatus.FAILED:
        assert row.last_error.startswith(f"channel deleted: channel {hook.channel.id} no longer exists")
        # Never retried: the sweeper has nothing to put back on the queue.
        assert store.due(T0 + timedelta(days=30), timedelta(minutes=2)) == []


def test_an_email_channels_confirmation_goes_out_before_anything_else(desk, mail_sink):
    store, settings, tenant, hook = desk
    pending = channels.create_email(store, tenant.id, "ops@example.com", settings, T0)
    subscriptions.create(store, tenant.id, "cpc", [pending.channel.id], T0, query="cpc")
    assert write_alerts(store, settings) == []  # unconfirmed: no alert for it
    assert outbox.attempt(store, pending.confirm_delivery, settings, clock) == AttemptOutcome.SENT
    [mail] = mail_sink.messages()
    assert mail["To"] == "ops@example.com"
    link = mail.get_body(("plain",)).get_content().split("/v1/channels/confirm/")[1].split()[0]
    channels.confirm(store, link, T0)
    [i] = write_alerts(store, settings)
    assert outbox.attempt(store, i, settings, clock) == AttemptOutcome.SENT
    assert len(mail_sink.messages()) == 2 and "CPC halts loadings" in mail_sink.messages()[1]["Subject"]


def test_a_malformed_channel_secret_fails_the_delivery_without_showing_it(desk, webhook_sink):
    store, settings, tenant, hook = desk
    subscriptions.create(store, tenant.id, "cpc", [hook.channel.id], T0, query="cpc")
    [i] = write_alerts(store, settings)
    with store.sessions.begin() as s:
        from services.store.models import Channel

        s.get(Channel, hook.channel.id).secret = "whsec_%%%not-base64"
    assert outbox.attempt(store, i, settings, clock) == AttemptOutcome.FAILED
    row = store.delivery(i)
    assert "the channel's secret starts with whsec_ but the rest is not valid base64" in row.last_error
    assert "%%%" not in row.last_error and webhook_sink.requests == []
