"""Tenant isolation: a second tenant's key gets 404 for each id of the
first, on every route that takes an id (never 403, so ids do not leak),
and nothing of the first tenant's changes or shows up in its lists."""
from __future__ import annotations

import pytest

from tests.unit.api.test_endpoints import assert_error

FX = {"pair": "KZT/USD", "change_pct": 1.0}

# Every route with an id of the first tenant's, as the second tenant calls it.
ROUTES = [
    ("GET", "/v1/channels/{hook}", None),
    ("GET", "/v1/channels/{mail}", None),
    ("DELETE", "/v1/channels/{hook}", None),
    ("DELETE", "/v1/channels/{mail}", None),
    ("GET", "/v1/subscriptions/{sub}", None),
    ("GET", "/v1/subscriptions/{fx}", None),
    ("PATCH", "/v1/subscriptions/{sub}", {"paused": True}),
    ("PATCH", "/v1/subscriptions/{sub}", {"query": "anything", "channels": ["{b_hook}"]}),
    ("PATCH", "/v1/subscriptions/{fx}", {"fx": FX}),
    ("DELETE", "/v1/subscriptions/{sub}", None),
    ("DELETE", "/v1/subscriptions/{fx}", None),
    ("GET", "/v1/deliveries/{delivery}", None),
    ("POST", "/v1/deliveries/{delivery}/replay", None),
    ("GET", "/v1/deliveries?subscription={sub}", None),
]


@pytest.fixture
def two(api):
    a, b = api.tenant("acme"), api.tenant("globex")
    hook, mail = api.webhook(a), api.email(a)
    sub = api.subscription(a, [hook["id"], mail["id"]])
    fx = api.call("POST", "/v1/subscriptions", a, {"name": "kzt", "fx": FX, "channels": [hook["id"]]}).json()
    delivery = api.delivery(sub, hook, error="HTTP 503")
    b_hook = api.webhook(b, "https://globex.example.com/hook")
    ids = {"hook": hook["id"], "mail": mail["id"], "sub": sub["id"], "fx": fx["id"], "delivery": delivery,
           "b_hook": b_hook["id"]}
    return a, b, ids


def fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


def state_of(api, key, ids) -> dict:
    """Everything the first tenant can see of its own."""
    return {
        "channels": api.call("GET", "/v1/channels", key).json(),
        "subscriptions": api.call("GET", "/v1/subscriptions", key).json(),
        "deliveries": api.call("GET", "/v1/deliveries", key).json(),
        "delivery": api.call("GET", f"/v1/deliveries/{ids['delivery']}", key).json(),
    }


@pytest.mark.parametrize("method, path, body", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_another_tenants_id_is_404(api, two, method, path, body):
    a, b, ids = two
    before = state_of(api, a, ids)
    r = api.call(method, fill(path, ids), b, fill(body, ids))
    assert_error(r, 404, "not_found")
    # The same answer as an id that does not exist at all.
    missing = {k: (v if k == "b_hook" else (123456789 if k == "delivery" else v[:3] + "0" * (len(v) - 3)))
               for k, v in ids.items()}
    assert_error(api.call(method, fill(path, missing), b, fill(body, ids)), 404, "not_found")
    assert state_of(api, a, ids) == before


def test_lists_show_only_ones_own(api, two):
    a, b, ids = two
    assert [c["id"] for c in api.call("GET", "/v1/channels", b).json()["items"]] == [ids["b_hook"]]
    assert api.call("GET", "/v1/subscriptions", b).json() == {"items": [], "next": None}
    assert api.call("GET", "/v1/deliveries", b).json() == {"items": [], "next": None}


def test_another_tenants_channel_cannot_be_subscribed_to(api, two):
    a, b, ids = two
    body = {"name": "sneaky", "query": "tariff", "channels": [ids["hook"]]}
    foreign = assert_error(api.call("POST", "/v1/subscriptions", b, body), 422, "invalid", "channels[0]")
    missing = assert_error(api.call("POST", "/v1/subscriptions", b, body | {"channels": ["ch_00000000000000000000"]}),
                           422, "invalid", "channels[0]")
    assert foreign["message"].replace(ids["hook"], "X") == missing["message"].replace("ch_00000000000000000000", "X")


def test_another_tenants_subscription_names_do_not_clash(api, two):
    a, b, ids = two
    r = api.call("POST", "/v1/subscriptions", b, {"name": "tariffs", "query": "tariff", "channels": [ids["b_hook"]]})
    assert r.status_code == 201
