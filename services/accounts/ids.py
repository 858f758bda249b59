"""Ids and secrets. Ids are random (no counts leak, nothing to guess);
API keys and confirmation tokens are stored only as SHA-256 hashes: they
are 256-bit random strings, so a slow password hash would add nothing."""
from __future__ import annotations

import base64
import hashlib
import secrets

KEY_PREFIX = "tlp_"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    # The Standard Webhooks form: receivers' libraries take it as is.
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
