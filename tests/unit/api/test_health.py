"""/healthz answers while the process is up; /readyz only when the database
and Redis both answer, and names the one that does not."""
from __future__ import annotations

import pytest

from services.api.app import create_app
from services.local.ports import free_port
from services.store import Store
from tests.unit.api.conftest import Api, make_settings
from fastapi.testclient import TestClient


def test_ready_when_both_answer(make_api, broker):
    r = make_api(redis_url=broker).call("GET", "/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.parametrize("redis_url, says", [
    (None, "Redis did not answer"),  # a port nothing listens on
    ("", "REDIS_URL is not set"),
])
def test_not_ready_without_redis(make_api, redis_url, says):
    api = make_api(redis_url=f"redis://127.0.0.1:{free_port()}/0" if redis_url is None else redis_url)
    r = api.call("GET", "/readyz")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "not_ready" and says in error["message"] and "database" not in error["message"]
    assert api.call("GET", "/healthz").status_code == 200


def test_not_ready_without_the_database(broker):
    dead = Store(f"postgresql://tulpar:pw-not-shown@127.0.0.1:{free_port()}/tulpar")
    try:
        with TestClient(create_app(make_settings("sqlite://", redis_url=broker), dead)) as client:
            r = Api(client, dead).call("GET", "/readyz")
            assert client.get("/healthz").status_code == 200
    finally:
        dead.dispose()
    assert r.status_code == 503
    message = r.json()["error"]["message"]
    assert "database did not answer" in message and "Redis" not in message and "pw-not-shown" not in message
