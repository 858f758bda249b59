"""What the account functions raise; the API maps each to a status and the
`{"error": {"code", "message", "field"}}` body."""
from __future__ import annotations

from services.errors import TulparError


class AccountError(TulparError):
    code = "error"

    def __init__(self, message: str, field: str | None = None, **extra):
        super().__init__(message)
        self.message, self.field, self.extra = message, field, extra


class NotFound(AccountError):
    """No such object for this tenant: missing and someone else's look the same."""

    code = "not_found"


class Invalid(AccountError):
    """Bad input: `field` names it (`query`, `channels[1]`, `fx.pair`);
    `extra` may carry `column` for a rule."""

    code = "invalid"


class Conflict(AccountError):
    """The change clashes with what exists (a name already taken)."""

    code = "conflict"
