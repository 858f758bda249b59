"""Limits on what one client may ask of the API.

- RateLimiter: at most `per_minute` requests per credential (API key or admin
  token) in each clock minute, counted in Redis under a hash of the
  credential (never the credential itself), so every API process shares the
  count. Beyond it: 429 with Retry-After (the seconds left in the minute).
  Redis down: the request goes through (fail open) and one redacted line is
  logged per minute; the limiter then leaves Redis alone for a few seconds
  instead of waiting on it with every request.
- BodyLimit: request bodies over MAX_BODY bytes are refused with 413, on the
  bytes actually received (a missing or lying Content-Length changes nothing).
"""
from __future__ import annotations

import logging
import math
import threading
import time

import redis

from services.accounts import ids
from services.api.errors import ApiError, reply
from services.redact import redact_text

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
WINDOW = 60  # seconds
REDIS_TIMEOUT = 0.5  # seconds: a slow Redis must not slow every request
BACK_OFF = 5.0  # seconds without asking Redis after it failed


def redis_client(url: str) -> redis.Redis | None:
    if not url:
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)


class RateLimiter:
    def __init__(self, client: redis.Redis | None, per_minute: int, clock=time.time):
        self.client, self.per_minute, self.clock = client, per_minute, clock
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._last_warning = -math.inf

    def check(self, credential: str) -> None:
        """Count one request for `credential`; ApiError 429 when over the limit."""
        if self.client is None or self.per_minute <= 0:
            return
        now = self.clock()
        if now < self._skip_until:
            return
        window = int(now // WINDOW)
        key = f"tulpar:ratelimit:{ids.digest(credential)[:32]}:{window}"
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, WINDOW + 5)
            count = pipe.execute()[0]
        except redis.RedisError as exc:
            self._failed(exc, now)
            return
        if count > self.per_minute:
            retry = max(1, math.ceil((window + 1) * WINDOW - now))
            raise ApiError(429, "rate_limited",
                           f"more than {self.per_minute} requests in a minute with this key; "
                           f"try again in {retry} s", headers={"Retry-After": str(retry)})

    def _failed(self, exc: Exception, now: float) -> None:
        with self._lock:
            self._skip_until = now + BACK_OFF
            if now - self._last_warning < WINDOW:
                return
            self._last_warning = now
        log.warning("rate limit not enforced: Redis did not answer (%s: %s); letting requests through",
                    type(exc).__name__, redact_text(str(exc)))


class BodyLimit:
    """ASGI middleware: read a request's body up to `limit` bytes, then hand
    it on; one longer is answered 413 without reaching the application."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        response = reply(413, "too_large", f"the request body is larger than {self.limit} bytes",
                         headers={"Connection": "close"})
        await response(scope, receive, send)
