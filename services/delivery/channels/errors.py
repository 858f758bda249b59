"""What a channel raises when a delivery fails, so the worker can decide: retry later
(RetryableError) or give up and mark the delivery failed (PermanentError).

Messages say what happened and where, always with the target redacted, and are
raised `from None`: the library exception underneath may quote the raw URL (and
its token) and would otherwise ride along in every logged traceback.
"""
from __future__ import annotations

from services.errors import TulparError
from services.redact import redact, redact_text


class DeliveryError(TulparError):
    def __init__(self, what: str, *, target: str):
        self.target = redact(target)
        self.what = redact_text(what)
        super().__init__(f"{self.what} [{self.target}]")


class RetryableError(DeliveryError):
    """Temporary: connection refused, timeout, HTTP 5xx/429, SMTP 4xx."""

    def __init__(self, what: str, *, target: str, retry_after: float | None = None,
                 slow: bool = False):
        super().__init__(what, target=target)
        # Seconds the receiver asked us to wait (HTTP Retry-After), if it said.
        self.retry_after = retry_after
        # The send ran into its deadline: the receiver holds a worker for as
        # long as we let it, so its other deliveries should wait too.
        self.slow = slow


class PermanentError(DeliveryError):
    """Retrying cannot help: HTTP 3xx/4xx, SMTP 5xx, a bad or refused target."""
