"""A tenant's subscription end to end, on real components (see conftest.py):
created over the HTTP API (a real `tulpar api`) while the worker runs,
matched by the worker's next poll without a restart, its webhook received by
a loopback receiver signed with the channel's own secret; then paused over
the API, and the next item is not sent."""
from __future__ import annotations

import json
import pytest
from standardwebhooks import Webhook

import httpx

from services.delivery.queue import Queue
from e2e.conftest import wait_until, write_feed
from unit.api.conftest import LiveApi

pytestmark = pytest.mark.e2e

CPC = {"guid": "cpc-1", "title": "CPC halts loadings after mooring damage", "summary": "Loadings stopped."}
CPC_AGAIN = {"guid": "cpc-2", "title": "CPC halts loadings for a second day", "summary": "Still stopped."}


ADMIN = "e2e-admin-token-0123456789"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_a_tenant_subscription_is_sent_signed_then_paused_without_a_restart(service, webhook_sink, mail_sink,
                                                                            redis_server):
    # Only the database's subscriptions: the harness's config file names one too.
    service.env["TULPAR_CONFIG_SUBSCRIPTIONS"] = "false"
    write_feed(service.feed, [])
    service.start_worker()
    queue = Queue(redis_server.url)
    stops = []
    try:
        # The worker is up and has polled once before the tenant exists.
        queue.poll(["wire"])
        wait_until(lambda: service.store.source_state("wire"), what="a first poll", log=service.log)

        service.env["TULPAR_ADMIN_TOKEN"] = ADMIN
        # The receiver is on loopback, which the API refuses unless allowed.
        service.env["TULPAR_ALLOW_PRIVATE_TARGETS"] = "true"
        api = LiveApi(service.env, service.tmp / "api.log").wait()
        stops.append(api.stop)
        made = httpx.post(api.url + "/v1/tenants", json={"name": "acme"}, headers=bearer(ADMIN))
        assert made.status_code == 201, made.text
        tenant, key = made.json()["id"], made.json()["api_key"]
        hook = httpx.post(api.url + "/v1/channels", headers=bearer(key),
                          json={"type": "webhook", "url": webhook_sink.url + "/hooks/acme", "format": "json"})
        assert hook.status_code == 201, hook.text
        hook = hook.json()
        sub = httpx.post(api.url + "/v1/subscriptions", headers=bearer(key),
                         json={"name": "pipeline watch", "query": "cpc AND (halt* OR damage*)",
                               "channels": [hook["id"]]})
        assert sub.status_code == 201, sub.text
        sub = sub.json()

        write_feed(service.feed, [CPC])
        queue.poll(["wire"])
        [received] = wait_until(webhook_sink.delivered, what="the tenant's webhook", log=service.log)
        body = Webhook(hook["secret"]).verify(received["body"], received["headers"])
        assert body["subscription"] == "pipeline watch" and "cpc-1" in json.dumps(body)
        assert received["path"] == "/hooks/acme"
        [row] = service.store.deliveries()
        assert (row.tenant_id, row.subscription_id, row.channel_id) == (tenant, sub["id"], hook["id"])
        listed = httpx.get(api.url + "/v1/deliveries", params={"subscription": sub["id"]}, headers=bearer(key))
        assert [d["id"] for d in listed.json()["items"]] == [row.id]
        wait_until(lambda: service.store.delivery(row.id).status == "sent", what="status sent")
        assert mail_sink.messages() == []  # the config file's subscription is not matched

        paused = httpx.patch(api.url + f"/v1/subscriptions/{sub['id']}", json={"paused": True}, headers=bearer(key))
        assert paused.status_code == 200 and paused.json()["paused"] is True
        write_feed(service.feed, [CPC, CPC_AGAIN])
        queue.poll(["wire"])
        wait_until(lambda: not service.store.unseen("wire", ["cpc-2"]), what="the second item polled",
                   log=service.log)
        assert [d.item_id for d in service.store.deliveries()] == ["cpc-1"]
        assert len(webhook_sink.delivered()) == 1
        log = (service.tmp / "worker.log").read_text(errors="replace")
        assert hook["secret"][len("whsec_"):] not in log
        assert key not in log and key not in api.output()
        assert hook["secret"][len("whsec_"):] not in api.output()
    finally:
        queue.close()
        for stop in stops:
            stop()
