"""POST a rendered JSON body to an http(s) URL, signed the Standard Webhooks way.

Headers: Content-Type, Idempotency-Key, and when there is a secret
`webhook-id` (the idempotency key), `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
The secret is a tenant's channel's own (Channel.secret, which the outbox
looks up at send time) or, for the config file's webhooks,
Settings.webhook_secret (TULPAR_WEBHOOK_SECRET).

The secret is either `whsec_<base64>` (the standard's format: the HMAC key is
the decoded bytes, so receivers using a standardwebhooks library take it as is)
or any other string, used as raw UTF-8 key bytes.

Each send has one deadline, settings.http_timeout, for connect, TLS, request
and answer together (services.net.httpclient), and goes only to the addresses it
checked. 2xx is sent; 429 and 5xx are retried later (Retry-After honoured on
429 and 503); any other status, redirects included, is given up at once.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from email.utils import parsedate_to_datetime

import httpx

from services.net import httpclient
from services.net import urlsafety
from services.delivery.channels.errors import PermanentError, RetryableError
from services.settings import Settings

KIND = "webhook"
_RETRY_AFTER_STATUSES = {429, 503}


def validate(target: str, settings: Settings) -> None:
    """Syntax, scheme and IP-literal checks only: config loading does no DNS."""
    urlsafety.check_url(target, allow_private=settings.allow_private_targets, resolve=False)


def secret_key(secret: str, what: str = "TULPAR_WEBHOOK_SECRET") -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            # Never echo the secret: say which one is wrong, not its value.
            raise ValueError(f"{what} starts with whsec_ but the rest "
                             "is not valid base64") from None
    return secret.encode("utf-8")


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes,
                      what: str = "TULPAR_WEBHOOK_SECRET") -> dict[str, str]:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret, what), signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _check_response(response: httpx.Response, target: str) -> None:
    """2xx is sent; 429 and 5xx may pass (retry); any other status never will."""
    status = response.status_code
    if 200 <= status < 300:
        return
    what = f"webhook answered {status} {response.reason_phrase}".rstrip()
    if status == 429 or 500 <= status < 600:
        raise RetryableError(what, target=target, retry_after=_retry_after(response))
    if 300 <= status < 400:
        # We never follow redirects (a public URL could bounce us to an internal
        # one): the user should put the final URL in their config.
        location = response.headers.get("location", "(no Location)")
        raise PermanentError(f"{what}, redirecting to {location}; "
                             "update the target to the final URL", target=target)
    # 408 and 425 too: a receiver that timed out reading a small JSON body, or
    # wants no early data, will answer the same to the same request later.
    raise PermanentError(what, target=target)


def _retry_after(response: httpx.Response) -> float | None:
    # Only where RFC 9110 gives Retry-After a meaning for an error: elsewhere a
    # stray header must not push a delivery back by hours.
    if response.status_code not in _RETRY_AFTER_STATUSES:
        return None
    return retry_after_seconds(response.headers.get("retry-after"), time.time())


def send(target: str, payload: dict, *, settings: Settings, idempotency_key: str,
         secret: str | None = None) -> None:
    """POST `payload`; `secret` is a tenant's channel's ("" for none), None
    takes TULPAR_WEBHOOK_SECRET."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
               "User-Agent": settings.user_agent}
    what = "the channel's secret" if secret is not None else "TULPAR_WEBHOOK_SECRET"
    if secret is None:
        secret = settings.webhook_secret.get_secret_value()
    if secret:
        try:
            headers |= signature_headers(secret, idempotency_key, int(time.time()), body, what)
        except ValueError as exc:
            if what == "TULPAR_WEBHOOK_SECRET":
                raise  # the operator's setting: a configuration error, as before
            raise PermanentError(str(exc), target=target) from None
    try:
        with httpclient.client(settings.http_timeout) as http, \
                httpclient.stream(http, "POST", target, headers=headers, content=body,
                                  allow_private=settings.allow_private_targets) as response:
            # Streamed and never read: a receiver answering with a huge body costs nothing.
            _check_response(response, target)
    except urlsafety.UnsafeURL as exc:
        raise PermanentError(str(exc), target=target) from None
    except urlsafety.HostLookupFailed as exc:
        raise RetryableError(str(exc), target=target) from None
    except httpx.TimeoutException:
        # Every timeout is the send's deadline: each connect and read is cut to it.
        raise RetryableError(f"webhook POST timed out after {settings.http_timeout:g}s",
                             target=target, slow=True) from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise RetryableError(f"webhook POST failed: {type(exc).__name__}: {exc}",
                             target=target) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        raise PermanentError(f"webhook POST impossible: {type(exc).__name__}: {exc}",
                             target=target) from None
