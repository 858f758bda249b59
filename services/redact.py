"""Hide secrets in delivery targets before they reach a log line or an error message.

In the spirit of Apprise's privacy mode: a webhook URL is often the credential
itself (Slack, Discord and Teams put the token in the path), so we keep what an
operator needs to tell targets apart (scheme, host, port, the shape of the path)
and mask the rest: userinfo, secret-looking query values, token-looking path
segments and fragments. Free text also loses Standard Webhooks secrets
(`whsec_...`) and any literal secret the caller names (services/logs.py names
the SecretStr settings: the SMTP password, the webhook secret).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"

# Query keys whose values are credentials (matched anywhere in the key, so
# `access_token`, `X-Api-Key`, `hmac_sig` and `client_secret` are all caught).
_SECRET_KEY = re.compile(
    r"token|key|secret|sig|pass|pwd|auth|credential|session|code|hash|otp", re.I
)
# A path segment "looks like a token" when it is long, made of token characters
# and has a digit or a capital (or is very long): that catches Slack's
# 24-char secret and Discord's 68-char token, but keeps readable lower-case
# words like `notifications-endpoint` visible.
_TOKENISH = re.compile(r"[A-Za-z0-9_\-.~+=%]{16,}")
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>]+")
# Standard Webhooks' secret format: whsec_ then base64. The prefix stays, to
# tell a reader which secret was there.
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def _looks_like_token(value: str) -> bool:
    if not _TOKENISH.fullmatch(value):
        return False
    return len(value) >= 32 or any(c.isdigit() or c.isupper() for c in value)


def _redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    out = []
    for key, value in pairs:
        if value and (_SECRET_KEY.search(key) or _looks_like_token(value)):
            value = MASK
        out.append(f"{quote(key, safe='')}={quote(value, safe='*')}")
    return "&".join(out)


def _redact_path(path: str) -> str:
    return "/".join(MASK if _looks_like_token(seg) else seg for seg in path.split("/"))


def redact(target: str) -> str:
    """A copy of `target` (a URL or `mailto:` address) that is safe to log."""
    if not target:
        return target
    try:
        parts = urlsplit(target)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        # Unparseable (bad port, broken IPv6 literal): show nothing we can't vet.
        return f"<unparseable target, {len(target)} chars>"
    if parts.scheme.lower() == "mailto":
        # The address is what an operator needs; only parameters can hide secrets.
        address = parts.path
        query = _redact_query(parts.query) if parts.query else ""
        return urlunsplit(("mailto", "", address, query, ""))
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if "@" in parts.netloc:
        netloc = f"{MASK}@{netloc}"
    return urlunsplit((
        parts.scheme,
        netloc,
        _redact_path(parts.path),
        _redact_query(parts.query) if parts.query else "",
        MASK if parts.fragment else "",
    ))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Redact free text (log messages, server replies): each of `secrets`
    wherever it appears, `whsec_` secrets, and every URL found in it."""
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _WHSEC.sub("whsec_" + MASK, text)
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with redact_text.

    Attach it to *handlers*, not loggers: a logger's filters do not run for
    records propagated up from its children, a handler's filters see them all
    (services/logs.py does, for every handler of a tulpar process). `secrets`
    are literal values to mask too (see redact_text).
    """

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # Args that do not fit msg: logging would print both, raw, as a
            # "Logging error", and a filter that raised would reach the caller.
            message = None
        redacted = redact_text(message if message is not None else
                               f"{record.msg} (args that do not fit: {record.args!r})", self.secrets)
        if redacted != message:
            # Freeze the formatted text: leaving args would let a formatter
            # re-insert the raw URL from them.
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse a ready exc_text, so the traceback (whose
            # exception messages may quote a URL) is redacted once, here.
            record.exc_text = redact_text(_FORMATTER.formatException(record.exc_info), self.secrets)
        return True


_FORMATTER = logging.Formatter()
