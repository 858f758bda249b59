"""Delivery channels, chosen by the target's URL scheme.

A channel receives an already rendered plain-JSON payload and only transmits it:
`{"subject", "text", "html", "inline_images"?}` for email (see services.render.email),
any JSON object for a webhook. Failures raise RetryableError or PermanentError.
"""
from __future__ import annotations

from types import ModuleType

from services.delivery.channels import email, webhook
from services.delivery.channels.errors import DeliveryError, PermanentError, RetryableError
from services.redact import redact
from services.settings import Settings

__all__ = ["deliver", "kind", "validate_target",
           "DeliveryError", "PermanentError", "RetryableError"]

# Explicit on purpose: adding a channel is one line here, not an import-time plugin hunt.
CHANNELS: dict[str, ModuleType] = {"mailto": email, "http": webhook, "https": webhook}


def _channel(target: str) -> ModuleType:
    scheme = target.partition(":")[0].strip().lower() if ":" in target else ""
    try:
        return CHANNELS[scheme]
    except KeyError:
        raise ValueError(
            f"unsupported target {redact(target)!r}: expected mailto:ADDRESS or an "
            "http(s):// webhook URL"
        ) from None


def kind(target: str) -> str:
    """Return "email" or "webhook": tells the pipeline which payload to render."""
    return _channel(target).KIND


def validate_target(target: str, settings: Settings) -> None:
    """Raise ValueError saying what is wrong with `target` (no network I/O)."""
    _channel(target).validate(target, settings)


def deliver(target: str, payload: dict, *, settings: Settings, idempotency_key: str,
            secret: str | None = None) -> None:
    """Send `payload` to `target`; raises RetryableError or PermanentError on failure.

    `secret`: a tenant's webhook channel's own signing secret ("" for none);
    None signs with TULPAR_WEBHOOK_SECRET, as the config file's webhooks are.
    Email takes no secret."""
    channel = _channel(target)
    if channel is webhook:
        channel.send(target, payload, settings=settings, idempotency_key=idempotency_key, secret=secret)
    else:
        channel.send(target, payload, settings=settings, idempotency_key=idempotency_key)
