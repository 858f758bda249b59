"""The API against real parts: a migrated database per test (SQLite;
PostgreSQL too when DATABASE_URL is set), the real application in-process
(Starlette's TestClient speaks ASGI to it), and for the live tests `tulpar
api` itself as a subprocess on a free port."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from services.api.app import create_app
from services.local.ports import free_port
from services.settings import Settings
from services.store.db import NewDelivery, add_deliveries
from services.store.models import AttemptOutcome, Channel, Delivery

ROOT = Path(__file__).resolve().parents[3]
ADMIN = "admin-token-for-the-tests-0123456789"
CONFIRM_LINK = re.compile(r"/v1/channels/confirm/([A-Za-z0-9_\-]+)")


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def make_settings(db_url: str, **overrides) -> Settings:
    values = {"database_url": db_url, "redis_url": "", "admin_token": SecretStr(ADMIN),
              "public_url": "https://tulpar.example", "allow_private_targets": False,
              "api_rate_limit": 10_000, "retention_days": 90}
    values |= overrides
    values["admin_token"] = SecretStr(str(values["admin_token"].get_secret_value()
                                          if isinstance(values["admin_token"], SecretStr) else values["admin_token"]))
    return Settings().model_copy(update=values)


class Api:
    """A client of the in-process app with the calls the tests repeat."""

    def __init__(self, client: TestClient, store):
        self.client, self.store = client, store

    def tenant(self, name: str = "acme") -> str:
        r = self.client.post("/v1/tenants", json={"name": name}, headers=bearer(ADMIN))
        assert r.status_code == 201, r.text
        return r.json()["api_key"]

    def call(self, method: str, path: str, key: str | None = None, json=None, **kw) -> httpx.Response:
        headers = kw.pop("headers", {}) | (bearer(key) if key else {})
        return self.client.request(method, path, json=json, headers=headers, **kw)

    def webhook(self, key: str, url: str = "https://hooks.example.com/tulpar") -> dict:
        r = self.call("POST", "/v1/channels", key, {"type": "webhook", "url": url, "format": "json"})
        assert r.status_code == 201, r.text
        return r.json()

    def email(self, key: str, address: str = "desk@example.com") -> dict:
        r = self.call("POST", "/v1/channels", key, {"type": "email", "address": address})
        assert r.status_code == 201, r.text
        return r.json()

    def subscription(self, key: str, channels: list[str], name: str = "tariffs", query: str = "tariff*") -> dict:
        r = self.call("POST", "/v1/subscriptions", key, {"name": name, "query": query, "channels": channels})
        assert r.status_code == 201, r.text
        return r.json()

    def confirm_token(self, channel_id: str) -> str:
        """The token in the confirmation email the outbox holds for the channel."""
        return confirm_token(self.store, channel_id)

    def delivery(self, subscription: dict, channel: dict, error: str | None = None) -> int:
        """A delivery as a worker writes it for the subscription and channel;
        with `error`, after one attempt that failed with it."""
        now = datetime.now(timezone.utc)
        with self.store.sessions.begin() as s:
            row = s.get(Channel, channel["id"])
            made = add_deliveries(s, [NewDelivery(f"k-{subscription['id']}-{channel['id']}", "wire", "a1",
                                                  subscription["name"], row.target, {"subject": "s"},
                                                  tenant_id=row.tenant_id, subscription_id=subscription["id"],
                                                  channel_id=channel["id"])], now)
            delivery_id = made[0].id
        if error:
            self.store.claim(delivery_id, now, lease=timedelta(seconds=30))
            self.store.record_attempt(delivery_id, outcome=AttemptOutcome.RETRY, now=now, error=error,
                                      retry_at=now + timedelta(minutes=5))
        return delivery_id


def confirm_token(store, channel_id: str) -> str:
    with store.sessions() as s:
        payload = s.scalar(select(Delivery.payload).where(Delivery.channel_id == channel_id))
    found = CONFIRM_LINK.search(repr(payload))
    assert found, payload
    return found.group(1)


@pytest.fixture
def settings(db_url):
    return make_settings(db_url)


@pytest.fixture
def api(store, settings):
    with TestClient(create_app(settings, store)) as client:
        yield Api(client, store)


@pytest.fixture
def make_api(store, db_url):
    """make_api(**settings): another app on the same database."""
    clients = []

    def make(**overrides) -> Api:
        client = TestClient(create_app(make_settings(db_url, **overrides), store))
        client.__enter__()
        clients.append(client)
        return Api(client, store)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


class LiveApi:
    """`tulpar api` as a subprocess on a free port; its stdout and stderr
    (the log) go to a file."""

    def __init__(self, env: dict, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "services", "api", "--port", str(self.port)],
                                         env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 30) -> "LiveApi":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"tulpar api exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"tulpar api did not answer in {timeout}s: {self.output()}")

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def api_env(db_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TULPAR_") and k not in ("DATABASE_URL", "REDIS_URL")}
    return env | {"DATABASE_URL": db_url, "TULPAR_ADMIN_TOKEN": ADMIN, "TULPAR_PUBLIC_URL": "https://tulpar.example"} | extra


@pytest.fixture
def live_api(tmp_path, store, db_url):
    """live_api(**env) -> a running `tulpar api` on the test's database."""
    started = []

    def start(**env: str) -> LiveApi:
        live = LiveApi(api_env(db_url, **env), tmp_path / f"api-{len(started)}.log")
        started.append(live)
        return live.wait()

    yield start
    for live in started:
        live.stop()
