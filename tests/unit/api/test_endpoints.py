"""Every route: its success and each of its errors, as tables of
(method, path, body, credential) -> status and the error's code and field.
Every error answer has the one body shape."""
from __future__ import annotations

import pytest

from tests.unit.api.conftest import ADMIN

A, NONE, BAD, ADMIN_KEY = "tenant", "none", "bad", "admin"
LONG_QUERY = "tariff OR " * 250 + "duty"
COMPLEX_QUERY = " OR ".join(f"w{i}" for i in range(120))
FX = {"pair": "KZT/USD", "change_pct": 1.0, "window": "1d", "direction": "down", "cooldown": "1d"}


@pytest.fixture
def world(api):
    """Tenant A with two channels, a news and an FX subscription and a delivery."""
    key = api.tenant("acme")
    hook = api.webhook(key)
    mail = api.email(key)
    sub = api.subscription(key, [hook["id"]])
    fx = api.call("POST", "/v1/subscriptions", key, {"name": "tenge", "fx": FX, "channels": [hook["id"]]}).json()
    delivery = api.delivery(sub, hook, error="HTTP 500 from https://hooks.example.com/tulpar?token=abcdef0123456789")
    return {"key": key, "hook": hook["id"], "mail": mail["id"], "sub": sub["id"], "fx": fx["id"],
            "delivery": delivery, "sub_name": sub["name"]}


def credential(kind: str, world: dict) -> str | None:
    return {A: world["key"], NONE: None, BAD: "tlp_not-a-key-we-gave-out", ADMIN_KEY: ADMIN}[kind]


def assert_error(r, status: int, code: str, field: str | None = None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert {"code", "message", "field"} <= set(body["error"]) <= {"code", "message", "field", "column"}
    assert body["error"]["code"] == code, body
    assert body["error"]["field"] == field, body
    assert body["error"]["message"]
    return body["error"]


# (case, method, path, body, credential, status, code, field); code None: success
CASES = [
    # tenants
    ("tenant created", "POST", "/v1/tenants", {"name": "globex"}, ADMIN_KEY, 201, None, None),
    ("tenant: no credentials", "POST", "/v1/tenants", {"name": "globex"}, NONE, 401, "unauthorized", None),
    ("tenant: a tenant key is not the admin token", "POST", "/v1/tenants", {"name": "globex"}, A, 401,
     "unauthorized", None),
    ("tenant: wrong admin token", "POST", "/v1/tenants", {"name": "globex"}, BAD, 401, "unauthorized", None),
    ("tenant: name taken", "POST", "/v1/tenants", {"name": "acme"}, ADMIN_KEY, 409, "conflict", "name"),
    ("tenant: bad name", "POST", "/v1/tenants", {"name": "Not OK!"}, ADMIN_KEY, 422, "invalid", "name"),
    ("tenant: name missing", "POST", "/v1/tenants", {}, ADMIN_KEY, 422, "invalid", "name"),
    ("tenant: unknown field", "POST", "/v1/tenants", {"name": "x", "plan": "gold"}, ADMIN_KEY, 422, "invalid", "plan"),
    # channels
    ("webhook created", "POST", "/v1/channels", {"type": "webhook", "url": "https://h.example.org/x", "format": "json"},
     A, 201, None, None),
    ("webhook, format defaults to json", "POST", "/v1/channels", {"type": "webhook", "url": "https://h.example.org/y"},
     A, 201, None, None),
    ("email created", "POST", "/v1/channels", {"type": "email", "address": "ops@example.org"}, A, 201, None, None),
    ("channel: no key", "POST", "/v1/channels", {"type": "email", "address": "ops@example.org"}, NONE, 401,
     "unauthorized", None),
    ("channel: bad key", "POST", "/v1/channels", {"type": "email", "address": "ops@example.org"}, BAD, 401,
     "unauthorized", None),
    ("webhook on loopback", "POST", "/v1/channels", {"type": "webhook", "url": "http://127.0.0.1:8080/x"}, A, 422,
     "invalid", "url"),
    ("webhook on IPv6 loopback", "POST", "/v1/channels", {"type": "webhook", "url": "http://[::1]/x"}, A, 422,
     "invalid", "url"),
    ("webhook on a private network", "POST", "/v1/channels", {"type": "webhook", "url": "https://10.1.2.3/x"}, A, 422,
     "invalid", "url"),
    ("webhook on a link-local address", "POST", "/v1/channels", {"type": "webhook", "url": "http://169.254.10.1/x"},
     A, 422, "invalid", "url"),
    ("webhook on the metadata address", "POST", "/v1/channels",
     {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}, A, 422, "invalid", "url"),
    ("webhook not http", "POST", "/v1/channels", {"type": "webhook", "url": "ftp://h.example.org/x"}, A, 422,
     "invalid", "url"),
    ("webhook: unknown format", "POST", "/v1/channels", {"type": "webhook", "url": "https://h.example.org/x",
                                                         "format": "xml"}, A, 422, "invalid", "format"),
    ("webhook: url missing", "POST", "/v1/channels", {"type": "webhook"}, A, 422, "invalid", "url"),
    ("email: bad address", "POST", "/v1/channels", {"type": "email", "address": "not an address"}, A, 422,
     "invalid", "address"),
    ("channel: unknown type", "POST", "/v1/channels", {"type": "fax", "number": "1"}, A, 422, "invalid", "type"),
    ("channel: no type", "POST", "/v1/channels", {"url": "https://h.example.org/x"}, A, 422, "invalid", "type"),
    ("channel: unknown field", "POST", "/v1/channels", {"type": "email", "address": "a@example.org", "cc": "b"},
     A, 422, "invalid", "cc"),
    ("channels listed", "GET", "/v1/channels", None, A, 200, None, None),
    ("channels: no key", "GET", "/v1/channels", None, NONE, 401, "unauthorized", None),
    ("channel read", "GET", "/v1/channels/{hook}", None, A, 200, None, None),
    ("channel: unknown id", "GET", "/v1/channels/ch_00000000000000000000", None, A, 404, "not_found", None),
    ("channel: not an id", "GET", "/v1/channels/a.b", None, A, 404, "not_found", None),
    ("channel: read without key", "GET", "/v1/channels/{hook}", None, NONE, 401, "unauthorized", None),
    ("channel deleted", "DELETE", "/v1/channels/{mail}", None, A, 204, None, None),
    ("channel delete: unknown id", "DELETE", "/v1/channels/ch_00000000000000000000", None, A, 404, "not_found", None),
    ("channel delete: bad key", "DELETE", "/v1/channels/{mail}", None, BAD, 401, "unauthorized", None),
    ("confirm: unknown token", "GET", "/v1/channels/confirm/not-a-token-we-sent", None, NONE, 404, "not_found", None),
    # subscriptions
    ("news subscription", "POST", "/v1/subscriptions", {"name": "cpc", "query": 'title:cpc AND halt*',
                                                        "channels": ["{hook}", "{mail}"]}, A, 201, None, None),
    ("FX subscription", "POST", "/v1/subscriptions", {"name": "kzt", "fx": FX, "channels": ["{hook}"]},
     A, 201, None, None),
    ("FX level subscription, paused", "POST", "/v1/subscriptions",
     {"name": "kzt-level", "fx": {"pair": "USD/KZT", "above": 530}, "channels": ["{hook}"], "paused": True},
     A, 201, None, None),
    ("subscription: no key", "POST", "/v1/subscriptions", {"name": "x", "query": "a", "channels": ["{hook}"]},
     NONE, 401, "unauthorized", None),
    ("subscription: bad rule", "POST", "/v1/subscriptions", {"name": "x", "query": "tariff AND", "channels": ["{hook}"]},
     A, 422, "invalid", "query"),
    ("subscription: query too long", "POST", "/v1/subscriptions",
     {"name": "x", "query": LONG_QUERY, "channels": ["{hook}"]}, A, 422, "invalid", "query"),
    ("subscription: query too complex", "POST", "/v1/subscriptions",
     {"name": "x", "query": COMPLEX_QUERY, "channels": ["{hook}"]}, A, 422, "invalid", "query"),
    ("subscription: empty query", "POST", "/v1/subscriptions", {"name": "x", "query": " ", "channels": ["{hook}"]},
     A, 422, "invalid", "query"),
    ("subscription: query and fx", "POST", "/v1/subscriptions",
     {"name": "x", "query": "a", "fx": FX, "channels": ["{hook}"]}, A, 422, "invalid", "query"),
    ("subscription: neither query nor fx", "POST", "/v1/subscriptions", {"name": "x", "channels": ["{hook}"]},
     A, 422, "invalid", "query"),
    ("subscription: fx with an unknown key", "POST", "/v1/subscriptions",
     {"name": "x", "fx": {**FX, "speed": 3}, "channels": ["{hook}"]}, A, 422, "invalid", "fx.speed"),
    ("subscription: fx with a bad pair", "POST", "/v1/subscriptions",
     {"name": "x", "fx": {"pair": "KZT", "change_pct": 1}, "channels": ["{hook}"]}, A, 422, "invalid", "fx.pair"),
    ("subscription: fx with a bad direction", "POST", "/v1/subscriptions",
     {"name": "x", "fx": {"pair": "KZT/USD", "change_pct": 1, "direction": "sideways"}, "channels": ["{hook}"]},
     A, 422, "invalid", "fx.direction"),
    ("subscription: fx change and level", "POST", "/v1/subscriptions",
     {"name": "x", "fx": {"pair": "KZT/USD", "change_pct": 1, "above": 2}, "channels": ["{hook}"]},
     A, 422, "invalid", "fx.change_pct"),
    ("subscription: no channels", "POST", "/v1/subscriptions", {"name": "x", "query": "a", "channels": []},
     A, 422, "invalid", "channels"),
    ("subscription: unknown channel", "POST", "/v1/subscriptions",
     {"name": "x", "query": "a", "channels": ["{hook}", "ch_00000000000000000000"]}, A, 422, "invalid", "channels[1]"),
    ("subscription: channel not a string", "POST", "/v1/subscriptions", {"name": "x", "query": "a", "channels": [1]},
     A, 422, "invalid", "channels[0]"),
    ("subscription: name taken", "POST", "/v1/subscriptions", {"name": "{sub_name}", "query": "a", "channels": ["{hook}"]},
     A, 409, "conflict", "name"),
    ("subscription: no name", "POST", "/v1/subscriptions", {"query": "a", "channels": ["{hook}"]},
     A, 422, "invalid", "name"),
    ("subscription: unknown field", "POST", "/v1/subscriptions",
     {"name": "x", "query": "a", "channels": ["{hook}"], "priority": 1}, A, 422, "invalid", "priority"),
    ("subscriptions listed", "GET", "/v1/subscriptions", None, A, 200, None, None),
    ("subscriptions, a page of one", "GET", "/v1/subscriptions?limit=1", None, A, 200, None, None),
    ("subscriptions, a huge limit is capped", "GET", "/v1/subscriptions?limit=100000", None, A, 200, None, None),
    ("subscriptions: limit 0", "GET", "/v1/subscriptions?limit=0", None, A, 422, "invalid", "limit"),
    ("subscriptions: limit not a number", "GET", "/v1/subscriptions?limit=ten", None, A, 422, "invalid", "limit"),
    ("subscriptions: bad cursor", "GET", "/v1/subscriptions?cursor=%%%", None, A, 422, "invalid", "cursor"),
    ("subscriptions: a cursor of NUL", "GET", "/v1/subscriptions?cursor=AA", None, A, 422, "invalid", "cursor"),
    ("subscriptions: no key", "GET", "/v1/subscriptions", None, NONE, 401, "unauthorized", None),
    ("subscription read", "GET", "/v1/subscriptions/{sub}", None, A, 200, None, None),
    ("subscription: unknown id", "GET", "/v1/subscriptions/sub_00000000000000000000", None, A, 404, "not_found", None),
    ("subscription: bad key", "GET", "/v1/subscriptions/{sub}", None, BAD, 401, "unauthorized", None),
    ("subscription paused", "PATCH", "/v1/subscriptions/{sub}", {"paused": True}, A, 200, None, None),
    ("subscription query changed", "PATCH", "/v1/subscriptions/{sub}", {"query": "export duty"}, A, 200, None, None),
    ("subscription channels changed", "PATCH", "/v1/subscriptions/{sub}", {"channels": ["{mail}"]}, A, 200, None, None),
    ("subscription renamed", "PATCH", "/v1/subscriptions/{sub}", {"name": "duties"}, A, 200, None, None),
    ("FX subscription's rule changed", "PATCH", "/v1/subscriptions/{fx}", {"fx": {"pair": "KZT/RUB", "change_pct": 2}},
     A, 200, None, None),
    ("patch: nothing given", "PATCH", "/v1/subscriptions/{sub}", {}, A, 200, None, None),
    ("patch: bad rule", "PATCH", "/v1/subscriptions/{sub}", {"query": "(tariff"}, A, 422, "invalid", "query"),
    ("patch: a query for an FX subscription", "PATCH", "/v1/subscriptions/{fx}", {"query": "tariff"}, A, 422,
     "invalid", "query"),
    ("patch: an fx rule for a news subscription", "PATCH", "/v1/subscriptions/{sub}", {"fx": FX}, A, 422,
     "invalid", "fx"),
    ("patch: paused not a boolean", "PATCH", "/v1/subscriptions/{sub}", {"paused": "maybe"}, A, 422, "invalid", "paused"),
    ("patch: unknown channel", "PATCH", "/v1/subscriptions/{sub}", {"channels": ["ch_00000000000000000000"]}, A, 422,
     "invalid", "channels[0]"),
    ("patch: name taken", "PATCH", "/v1/subscriptions/{sub}", {"name": "tenge"}, A, 409, "conflict", "name"),
    ("patch: unknown field", "PATCH", "/v1/subscriptions/{sub}", {"colour": "red"}, A, 422, "invalid", "colour"),
    ("patch: unknown id", "PATCH", "/v1/subscriptions/sub_00000000000000000000", {"paused": True}, A, 404,
     "not_found", None),
    ("patch: no key", "PATCH", "/v1/subscriptions/{sub}", {"paused": True}, NONE, 401, "unauthorized", None),
    ("subscription deleted", "DELETE", "/v1/subscriptions/{sub}", None, A, 204, None, None),
    ("delete: unknown id", "DELETE", "/v1/subscriptions/sub_00000000000000000000", None, A, 404, "not_found", None),
    ("delete: no key", "DELETE", "/v1/subscriptions/{sub}", None, NONE, 401, "unauthorized", None),
    # rule preview (its success: test_preview.py)
    ("preview: bad rule", "POST", "/v1/rules/preview", {"query": "tariff AND", "days": 30}, A, 422, "invalid", "query"),
    ("preview: query too complex", "POST", "/v1/rules/preview", {"query": COMPLEX_QUERY}, A, 422, "invalid", "query"),
    ("preview: no query", "POST", "/v1/rules/preview", {"days": 3}, A, 422, "invalid", "query"),
    ("preview: zero days", "POST", "/v1/rules/preview", {"query": "tariff", "days": 0}, A, 422, "invalid", "days"),
    ("preview: beyond retention", "POST", "/v1/rules/preview", {"query": "tariff", "days": 91}, A, 422, "invalid",
     "days"),
    ("preview: unknown field", "POST", "/v1/rules/preview", {"query": "tariff", "lang": "ru"}, A, 422, "invalid", "lang"),
    ("preview: no key", "POST", "/v1/rules/preview", {"query": "tariff"}, NONE, 401, "unauthorized", None),
    # deliveries
    ("deliveries listed", "GET", "/v1/deliveries", None, A, 200, None, None),
    ("deliveries of a subscription", "GET", "/v1/deliveries?subscription={sub}", None, A, 200, None, None),
    ("deliveries of a subscription with none", "GET", "/v1/deliveries?subscription={fx}", None, A, 200, None, None),
    ("deliveries: unknown subscription", "GET", "/v1/deliveries?subscription=sub_00000000000000000000", None, A, 404,
     "not_found", None),
    ("deliveries: bad cursor", "GET", "/v1/deliveries?cursor=bm90LWEtbnVtYmVy", None, A, 422, "invalid", "cursor"),
    ("deliveries: limit 0", "GET", "/v1/deliveries?limit=0", None, A, 422, "invalid", "limit"),
    ("deliveries: no key", "GET", "/v1/deliveries", None, NONE, 401, "unauthorized", None),
    ("delivery read", "GET", "/v1/deliveries/{delivery}", None, A, 200, None, None),
    ("delivery: unknown id", "GET", "/v1/deliveries/987654", None, A, 404, "not_found", None),
    ("delivery: id 0", "GET", "/v1/deliveries/0", None, A, 422, "invalid", "delivery_id"),
    ("delivery: id past 64 bits", "GET", "/v1/deliveries/99999999999999999999", None, A, 422, "invalid", "delivery_id"),
    # The column is 32 bits on PostgreSQL: a larger id failed the query there (500).
    ("delivery: id past 32 bits", "GET", "/v1/deliveries/9223372036854775806", None, A, 422, "invalid", "delivery_id"),
    ("replay: id past 32 bits", "POST", "/v1/deliveries/2147483648/replay", None, A, 422, "invalid", "delivery_id"),
    ("delivery: id not a number", "GET", "/v1/deliveries/abc", None, A, 422, "invalid", "delivery_id"),
    ("delivery: bad key", "GET", "/v1/deliveries/{delivery}", None, BAD, 401, "unauthorized", None),
    ("delivery replayed", "POST", "/v1/deliveries/{delivery}/replay", None, A, 202, None, None),
    ("replay: unknown id", "POST", "/v1/deliveries/987654/replay", None, A, 404, "not_found", None),
    ("replay: no key", "POST", "/v1/deliveries/{delivery}/replay", None, NONE, 401, "unauthorized", None),
    # health
    ("healthz", "GET", "/healthz", None, NONE, 200, None, None),
    ("openapi", "GET", "/openapi.json", None, NONE, 200, None, None),
    ("docs", "GET", "/docs", None, NONE, 200, None, None),
    # the framework's own errors
    ("unknown route", "GET", "/v1/nothing-here", None, A, 404, "not_found", None),
    ("wrong method", "PUT", "/v1/channels", None, A, 405, "method_not_allowed", None),
]


def fill(value, world):
    if isinstance(value, str):
        return value.format(**world) if "{" in value else value
    if isinstance(value, list):
        return [fill(v, world) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case, method, path, body, cred, status, code, field", CASES, ids=[c[0] for c in CASES])
def test_route(api, world, case, method, path, body, cred, status, code, field):
    r = api.call(method, fill(path, world), credential(cred, world), fill(body, world))
    if code is not None:
        error = assert_error(r, status, code, field)
        if status == 401:
            assert r.headers["www-authenticate"] == "Bearer"
        if status == 405:
            assert "allow" in r.headers
        return
    assert r.status_code == status, r.text
    if status == 204:
        assert r.content == b""


def test_created_and_read_bodies(api, world):
    key = world["key"]
    hook = api.call("GET", f"/v1/channels/{world['hook']}", key).json()
    assert hook == {"id": world["hook"], "type": "webhook", "url": "https://hooks.example.com/tulpar",
                    "address": None, "format": "json", "confirmed": True, "created_at": hook["created_at"]}
    mail = api.call("GET", f"/v1/channels/{world['mail']}", key).json()
    assert (mail["type"], mail["address"], mail["url"], mail["confirmed"]) == ("email", "desk@example.com", None, False)
    sub = api.call("GET", f"/v1/subscriptions/{world['sub']}", key).json()
    assert {k: sub[k] for k in ("id", "name", "query", "fx", "channels", "paused")} == {
        "id": world["sub"], "name": "tariffs", "query": "tariff*", "fx": None, "channels": [world["hook"]],
        "paused": False}
    fx = api.call("GET", f"/v1/subscriptions/{world['fx']}", key).json()
    assert (fx["query"], fx["fx"]) == (None, FX)
    changed = api.call("PATCH", f"/v1/subscriptions/{world['sub']}", key,
                       {"query": "export duty", "channels": [world["mail"], world["hook"]], "paused": True}).json()
    assert (changed["query"], changed["channels"], changed["paused"]) == (
        "export duty", [world["mail"], world["hook"]], True)
    assert api.call("GET", f"/v1/subscriptions/{world['sub']}", key).json()["paused"] is True
    api.call("DELETE", f"/v1/subscriptions/{world['sub']}", key)
    assert api.call("GET", f"/v1/subscriptions/{world['sub']}", key).status_code == 404
    api.call("DELETE", f"/v1/channels/{world['mail']}", key)
    assert [c["id"] for c in api.call("GET", "/v1/channels", key).json()["items"]] == [world["hook"]]


def test_a_bad_rule_reads_like_tulpar_rules_check(api, world, capsys):
    from services.cli import main

    query = 'title:(cpc OR "caspian pipeline") AND AND halt*'
    assert main(["rules", "check", query]) == 2
    cli_message = capsys.readouterr().err.splitlines()[0].removeprefix("tulpar rules check: ")
    r = api.call("POST", "/v1/subscriptions", world["key"], {"name": "x", "query": query, "channels": [world["hook"]]})
    error = assert_error(r, 422, "invalid", "query")
    assert error["message"] == cli_message
    assert isinstance(error["column"], int) and f"column {error['column']}" in cli_message
    preview = assert_error(api.call("POST", "/v1/rules/preview", world["key"], {"query": query}), 422, "invalid", "query")
    assert (preview["message"], preview["column"]) == (error["message"], error["column"])


@pytest.mark.parametrize("query, says", [(LONG_QUERY, "at most 2000"), (COMPLEX_QUERY, "too complex")])
def test_query_caps_say_so(api, world, query, says):
    r = api.call("POST", "/v1/subscriptions", world["key"], {"name": "x", "query": query, "channels": [world["hook"]]})
    assert says in assert_error(r, 422, "invalid", "query")["message"]


def test_subscription_pages_walk_every_item_once(api, world):
    key = world["key"]
    for i in range(7):
        api.subscription(key, [world["hook"]], name=f"s{i}", query=f"word{i}")
    seen, cursor = [], None
    while True:
        page = api.call("GET", "/v1/subscriptions", key, params={"limit": 3} | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200
        body = page.json()
        assert set(body) == {"items", "next"} and len(body["items"]) <= 3
        seen += [s["id"] for s in body["items"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 9


def test_deliveries_page_and_detail(api, world):
    key = world["key"]
    page = api.call("GET", "/v1/deliveries", key, params={"subscription": world["sub"]}).json()
    assert [d["id"] for d in page["items"]] == [world["delivery"]] and page["next"] is None
    detail = api.call("GET", f"/v1/deliveries/{world['delivery']}", key).json()
    assert detail["status"] == "retrying" and detail["attempts"] == 1
    assert [h["outcome"] for h in detail["history"]] == ["retry"]
    # The target's and the error's secrets are masked.
    assert "abcdef0123456789" not in str(detail) and "***" in detail["last_error"]
    replayed = api.call("POST", f"/v1/deliveries/{world['delivery']}/replay", key)
    assert replayed.status_code == 202 and replayed.json()["status"] == "pending"
    assert replayed.json()["attempts"] == 0


def test_a_confirmation_link_confirms_once(api, world):
    token = api.confirm_token(world["mail"])
    first = api.call("GET", f"/v1/channels/confirm/{token}", headers={"Accept": "text/html"})
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/html")
    assert "desk@example.com" in first.text
    assert api.call("GET", f"/v1/channels/{world['mail']}", world["key"]).json()["confirmed"] is True
    again_browser = api.call("GET", f"/v1/channels/confirm/{token}", headers={"Accept": "text/html"})
    assert again_browser.status_code == 404 and again_browser.headers["content-type"].startswith("text/html")
    assert_error(api.call("GET", f"/v1/channels/confirm/{token}"), 404, "not_found")


def test_no_admin_token_means_no_tenants(make_api):
    closed = make_api(admin_token="")
    for cred in ("", "anything"):
        r = closed.call("POST", "/v1/tenants", cred or None, {"name": "acme"})
        assert "TULPAR_ADMIN_TOKEN" in assert_error(r, 401, "unauthorized")["message"]


@pytest.mark.parametrize("header", ["Basic " + "YTpi", "Bearer", "Bearer ", "tlp_abc", "Token tlp_abc"])
def test_malformed_authorization_is_401(api, world, header):
    r = api.call("GET", "/v1/channels", headers={"Authorization": header})
    assert_error(r, 401, "unauthorized")


@pytest.mark.parametrize("content, content_type, status, code, field", [
    (b'{"name": "x", ', "application/json", 400, "malformed_json", None),
    (b"not json at all", "application/json", 400, "malformed_json", None),
    (b'["a list"]', "application/json", 422, "invalid", None),
    (b'"a string"', "application/json", 422, "invalid", None),
    (b"", "application/json", 422, "invalid", None),
    (b"name=x", "application/x-www-form-urlencoded", 422, "invalid", None),
    (b'{"name": "x", "query": "a", "channels": ["c"], "paused": NaN}', "application/json", 422, "invalid", "paused"),
    (b'{"name": "x", "fx": {"pair": "KZT/USD", "change_pct": Infinity}, "channels": ["c"]}', "application/json",
     422, "invalid", "fx.change_pct"),
    (b'{"name": "a\\u0000b", "query": "a", "channels": ["c"]}', "application/json", 422, "invalid", "name"),
])
def test_malformed_bodies(api, world, content, content_type, status, code, field):
    r = api.call("POST", "/v1/subscriptions", world["key"], content=content, headers={"Content-Type": content_type})
    assert_error(r, status, code, field)


def test_the_openapi_document_declares_every_error(api):
    doc = api.call("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            statuses = set(op["responses"])
            if path.startswith("/v1/") and "confirm" not in path:
                assert {"401", "429"} <= statuses, (method, path)
            if "requestBody" in op:
                assert {"400", "413", "422"} <= statuses, (method, path)
            if "{" in path and "confirm" not in path:
                assert "404" in statuses, (method, path)
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schemas = [c.get("schema", {}).get("$ref") for c in response["content"].values()]
                    assert "#/components/schemas/ErrorBody" in schemas, (method, path, status)
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["ApiKey"]["description"]}
