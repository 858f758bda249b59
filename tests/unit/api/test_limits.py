"""The per-key rate limit on a real redis-server (429 with Retry-After,
counted under a hash of the key, failing open when Redis is down) and the
request body cap (in-process; the live server's: test_live.py)."""
from __future__ import annotations

import logging

import pytest
import redis

from services.api.limits import MAX_BODY, RateLimiter
from services.local.ports import free_port
from tests.unit.api.conftest import ADMIN
from tests.unit.api.test_endpoints import assert_error


@pytest.fixture
def limited(make_api, broker):
    return make_api(redis_url=broker, api_rate_limit=5)


def test_the_sixth_request_in_a_minute_is_429_with_retry_after(limited, broker):
    a, b = limited.tenant("acme"), limited.tenant("globex")  # the admin token's own count: 2
    answers = [limited.call("GET", "/v1/channels", a) for _ in range(7)]
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 2
    error = assert_error(answers[5], 429, "rate_limited")
    assert "5 requests" in error["message"]
    assert 1 <= int(answers[5].headers["retry-after"]) <= 60
    # Per key: the other tenant still has its own minute.
    assert limited.call("GET", "/v1/channels", b).status_code == 200
    # Counted under a hash: no key in Redis names the API key.
    stored = [k.decode() for k in redis.Redis.from_url(broker).keys("*")]
    assert stored and all(a not in k and b not in k for k in stored)


def test_wrong_keys_are_counted_too(limited):
    guesses = [limited.call("GET", "/v1/channels", "tlp_guess") for _ in range(6)]
    assert [r.status_code for r in guesses] == [401] * 5 + [429]


def test_the_admin_token_is_limited(limited):
    answers = [limited.call("POST", "/v1/tenants", ADMIN, {"name": f"t{i}"}) for i in range(6)]
    assert [r.status_code for r in answers] == [201] * 5 + [429]


def test_the_window_resets(broker):
    clock = [120.0]
    limiter = RateLimiter(redis.Redis.from_url(broker), 2, clock=lambda: clock[0])
    limiter.check("k")
    limiter.check("k")
    with pytest.raises(Exception) as raised:
        limiter.check("k")
    assert raised.value.status == 429 and raised.value.headers == {"Retry-After": "60"}
    clock[0] = 179.5
    with pytest.raises(Exception) as raised:
        limiter.check("k")
    assert raised.value.headers == {"Retry-After": "1"}
    clock[0] = 180.0
    limiter.check("k")  # a new minute


def test_a_dead_redis_lets_requests_through_and_says_so_once(make_api, caplog):
    dead = make_api(redis_url=f"redis://:secret-pass@127.0.0.1:{free_port()}/0", api_rate_limit=1)
    key = dead.tenant("acme")
    with caplog.at_level(logging.WARNING, logger="services.api.limits"):
        assert [dead.call("GET", "/v1/channels", key).status_code for _ in range(5)] == [200] * 5
    lines = [r.getMessage() for r in caplog.records if r.name == "services.api.limits"]
    assert len(lines) <= 1 and all("secret-pass" not in line and key not in line for line in lines)


@pytest.mark.parametrize("size, status", [(MAX_BODY + 1, 413), (10 * MAX_BODY, 413), (MAX_BODY - 100, 400)])
def test_the_body_cap(api, size, status):
    key = api.tenant("acme")
    r = api.call("POST", "/v1/subscriptions", key, content=b"{" + b"x" * (size - 1),
                 headers={"Content-Type": "application/json"})
    assert r.status_code == status
    if status == 413:
        assert_error(r, 413, "too_large")


def test_the_body_cap_holds_without_content_length(api):
    key = api.tenant("acme")

    def chunks():
        for _ in range(20):
            yield b" " * 8192

    r = api.call("POST", "/v1/subscriptions", key, content=chunks(), headers={"Content-Type": "application/json"})
    assert_error(r, 413, "too_large")
