"""`tulpar api` as a subprocess on a free port: it serves, says where,
refuses an unmigrated database, and keeps every secret (API keys, webhook
secrets, confirmation tokens, the admin token) out of its log and out of
every answer after the one that created it."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import redis

from services.local.ports import free_port
from tests.unit.api.conftest import ADMIN, ROOT, api_env, bearer, confirm_token


def test_it_serves_and_says_where(live_api):
    live = live_api()
    assert httpx.get(live.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(live.url + "/openapi.json").json()["info"]["title"] == "tulpar"
    assert "swagger" in httpx.get(live.url + "/docs").text.lower()
    assert f"serving on {live.url}" in live.output()


def test_it_refuses_an_unmigrated_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    done = subprocess.run([sys.executable, "-m", "services", "api", "--port", str(free_port())],
                          env=api_env(url), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert "not migrated" in done.stderr and "tulpar db upgrade" in done.stderr
    assert "serving on" not in done.stdout


def test_secrets_stay_out_of_logs_and_later_answers(live_api, store, redis_server):
    redis.Redis.from_url(redis_server.url).flushall()
    live = live_api(REDIS_URL=redis_server.url)
    later: list[httpx.Response] = []
    with httpx.Client(base_url=live.url, timeout=10) as http:
        key = http.post("/v1/tenants", json={"name": "acme"}, headers=bearer(ADMIN)).json()["api_key"]
        as_tenant = bearer(key)
        made = http.post("/v1/channels", json={"type": "webhook", "url": "https://hooks.example.com/x"},
                         headers=as_tenant).json()
        secret = made["secret"]
        assert secret.startswith("whsec_")
        mail = http.post("/v1/channels", json={"type": "email", "address": "desk@example.com"}, headers=as_tenant)
        assert mail.status_code == 201 and mail.json()["secret"] is None
        token = confirm_token(store, mail.json()["id"])
        # The confirmation email went onto the workers' queue (best effort, after the answer).
        deadline = time.monotonic() + 10
        while redis.Redis.from_url(redis_server.url).llen("deliver") < 1:
            assert time.monotonic() < deadline, "the confirmation email was not enqueued"
            time.sleep(0.05)
        sub = http.post("/v1/subscriptions", json={"name": "t", "query": "tariff", "channels": [made["id"]]},
                        headers=as_tenant).json()
        later += [
            http.get(f"/v1/channels/confirm/{token}"),
            http.get(f"/v1/channels/confirm/{token}"),  # used: 404
            http.get("/v1/channels", headers=as_tenant),
            http.get(f"/v1/channels/{made['id']}", headers=as_tenant),
            http.get(f"/v1/channels/{mail.json()['id']}", headers=as_tenant),
            http.get("/v1/subscriptions", headers=as_tenant),
            http.get(f"/v1/subscriptions/{sub['id']}", headers=as_tenant),
            http.get("/v1/deliveries", headers=as_tenant),
            http.post("/v1/tenants", json={"name": "acme"}, headers=bearer(ADMIN)),  # 409
            http.get("/v1/channels", headers=bearer(key + "x")),  # 401
            http.get(f"/v1/channels?api_key={key}&token={token}", headers=as_tenant),
            http.get(f"/v1/nothing/{token}/{key}"),  # 404, no route
        ]
        deliveries = later[7].json()["items"]
        later += [http.get(f"/v1/deliveries/{d['id']}", headers=as_tenant) for d in deliveries]
        later.append(http.post("/v1/channels", content=b"{" + key.encode() + b"}", headers=as_tenant | {
            "Content-Type": "application/json"}))  # malformed, quoting the key
    assert [r.status_code for r in later[:2]] == [200, 404]
    assert all(r.status_code < 500 for r in later)
    assert deliveries and deliveries[0]["subscription_name"] == "(email confirmation)"
    secrets = {"api key": key, "webhook secret": secret, "confirmation token": token, "admin token": ADMIN,
               "webhook secret's body": secret.removeprefix("whsec_")}
    for r in later:
        for what, value in secrets.items():
            assert value not in r.text, f"{what} in the answer to {r.request.method} {r.request.url.path}"
    time.sleep(0.3)  # the last access lines
    live.stop()
    log = live.output()
    # The log was captured: one line per request, naming routes, not paths.
    assert "GET /v1/channels/confirm/{token} 200" in log and "GET /v1/channels/confirm/{token} 404" in log
    assert "POST /v1/tenants 201" in log and "GET (no route) 404" in log
    for what, value in secrets.items():
        assert value not in log, f"{what} in the log"


def test_a_dead_redis_does_not_stop_an_email_channel(live_api, store):
    dead = f"redis://:p4ssw0rd-in-the-url@127.0.0.1:{free_port()}/0"
    live = live_api(REDIS_URL=dead)
    with httpx.Client(base_url=live.url, timeout=30) as http:
        key = http.post("/v1/tenants", json={"name": "acme"}, headers=bearer(ADMIN)).json()["api_key"]
        r = http.post("/v1/channels", json={"type": "email", "address": "desk@example.com"}, headers=bearer(key))
        assert r.status_code == 201
        # Rate limiting fails open too.
        assert http.get("/v1/channels", headers=bearer(key)).status_code == 200
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "Redis" in ready.json()["error"]["message"]
    deadline = time.monotonic() + 20
    while "could not enqueue" not in live.output():
        assert time.monotonic() < deadline, live.output()
        time.sleep(0.1)
    live.stop()
    log = live.output()
    assert "the sweeper will send them" in log and "rate limit not enforced" in log
    assert "p4ssw0rd-in-the-url" not in log and key not in log


def test_the_body_cap_counts_the_bytes_not_the_header(live_api):
    live = live_api()
    key = httpx.post(live.url + "/v1/tenants", json={"name": "acme"}, headers=bearer(ADMIN)).json()["api_key"]

    def chunks(total: int):
        sent = 0
        while sent < total:
            piece = min(8192, total - sent)
            yield b" " * piece
            sent += piece

    # No Content-Length at all (chunked), a body over the cap: 413.
    r = httpx.post(live.url + "/v1/subscriptions", content=chunks(200_000),
                   headers=bearer(key) | {"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert "Content-Length" not in r.request.headers
    # A declared length over the cap is refused without reading the body.
    r = httpx.post(live.url + "/v1/subscriptions", content=b"{" + b" " * 70_000 + b"}",
                   headers=bearer(key) | {"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413
    # Just under the cap goes through to validation.
    body = json.dumps({"name": "x", "query": "a", "channels": ["c"], "pad": " " * 60_000}).encode()
    r = httpx.post(live.url + "/v1/subscriptions", content=body,
                   headers=bearer(key) | {"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["field"] == "pad"
