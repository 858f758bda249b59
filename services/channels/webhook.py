"""POST a rendered JSON body to an http(s) URL, signed the Standard Webhooks way.

Headers: Content-Type, Idempotency-Key, and when Settings.webhook_secret is set
`webhook-id` (the idempotency key), `webhook-timestamp` and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.

The secret is either `whsec_<base64>` (the standard's format: the HMAC key is
the decoded bytes, so receivers using a standardwebhooks library take it as is)
or any other string, used as raw UTF-8 key bytes.
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

from services import urlsafety
from services.channels.errors import PermanentError, RetryableError
from services import tls
from services.settings import Settings

KIND = "webhook"
_RETRY_STATUSES = {408, 425, 429}


def validate(target: str, settings: Settings) -> None:
    """Syntax, scheme and IP-literal checks only: config loading does no DNS."""
    urlsafety.check_url(target, allow_private=settings.allow_private_targets, resolve=False)


def secret_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except (binascii.Error, ValueError):
            # Never echo the secret: say which setting is wrong, not its value.
            raise ValueError("TULPAR_WEBHOOK_SECRET starts with whsec_ but the rest "
                             "is not valid base64") from None
    return secret.encode("utf-8")


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
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
    status = response.status_code
    if 200 <= status < 300:
        return
    what = f"webhook answered {status} {response.reason_phrase}"
    if 300 <= status < 400:
        # We never follow redirects (a public URL could bounce us to an internal
        # one): the user should put the final URL in their config.
        location = response.headers.get("location", "(no Location)")
        raise PermanentError(f"{what}, redirecting to {location}; "
                             "update the target to the final URL", target=target)
    if status >= 500 or status in _RETRY_STATUSES:
        wait = retry_after_seconds(response.headers.get("retry-after"), time.time())
        raise RetryableError(what, target=target, retry_after=wait)
    raise PermanentError(what, target=target)


def pinned(target: str, ip: urlsafety.IPAddress) -> tuple[httpx.URL, dict, dict]:
    """(url, extra headers, request extensions) that reach `target` at `ip`.

    The URL carries the vetted IP so the client cannot resolve the name again;
    the Host header and, for https, the TLS SNI name (which is also the name
    the certificate is verified against) keep the original host.
    """
    url = httpx.URL(target)
    if url.host == str(ip):  # already an IP literal
        return url, {}, {}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return url.copy_with(host=str(ip)), {"Host": url.netloc.decode("ascii")}, extensions


def send(target: str, payload: dict, *, settings: Settings, idempotency_key: str) -> None:
    try:
        addresses = urlsafety.vetted_addresses(target, allow_private=settings.allow_private_targets)
    except urlsafety.UnsafeURL as exc:
        raise PermanentError(str(exc), target=target) from None
    except urlsafety.HostLookupFailed as exc:
        raise RetryableError(str(exc), target=target) from None
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
               "User-Agent": settings.user_agent}
    secret = settings.webhook_secret.get_secret_value()
    if secret:
        headers |= signature_headers(secret, idempotency_key, int(time.time()), body)
    # trust_env=False: an HTTP(S)_PROXY from the environment would make the proxy
    # resolve and connect, bypassing the address check above.
    try:
        routes = [pinned(target, ip) for ip in addresses] or [(httpx.URL(target), {}, {})]
        with httpx.Client(timeout=settings.http_timeout, follow_redirects=False,
                          trust_env=False, verify=tls.client_context()) as client:
            for n, (url, extra_headers, extensions) in enumerate(routes, 1):
                try:
                    # Stream so that a receiver answering with a huge body is never read.
                    with client.stream("POST", url, content=body, headers=headers | extra_headers,
                                       extensions=extensions) as response:
                        _check_response(response, target)
                    return
                except httpx.ConnectError:
                    if n == len(routes):  # e.g. an AAAA first on a host without IPv6
                        raise
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise RetryableError(f"webhook POST failed: {type(exc).__name__}: {exc}",
                             target=target) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        raise PermanentError(f"webhook POST impossible: {type(exc).__name__}: {exc}",
                             target=target) from None
