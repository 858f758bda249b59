"""The API's access log, written so no secret reaches it.

uvicorn's own access log prints each request's path, and a path can be a
secret: the email confirmation link is /v1/channels/confirm/<token>. So
`tulpar api` turns uvicorn's off and this middleware logs the *route*
instead (`GET /v1/channels/confirm/{token} 200 3.1ms`), never the path or
the query string. `KeyFilter` is a second net on every handler of the
process: API keys (tlp_...) and confirmation paths are masked in any line
that would carry one, uvicorn's access log included should it be turned on.
"""
from __future__ import annotations

import logging
import re
import time

from services.redact import MASK

log = logging.getLogger("services.api.access")

_API_KEY = re.compile(r"tlp_[A-Za-z0-9_\-]+")
_CONFIRM = re.compile(r"(/channels/confirm/)(?!\{token\})[^\s\"'?]+")


def mask(text: str) -> str:
    return _CONFIRM.sub(r"\1" + MASK, _API_KEY.sub("tlp_" + MASK, text))


class KeyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # services.redact.RedactingFilter deals with those
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_filter() -> None:
    """KeyFilter on every handler in the process and on uvicorn's loggers."""
    from services.logs import _all_handlers

    for handler in _all_handlers():
        if not any(isinstance(f, KeyFilter) for f in handler.filters):
            handler.addFilter(KeyFilter())
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, KeyFilter) for f in logger.filters):
            logger.addFilter(KeyFilter())


class AccessLog:
    """ASGI middleware: one INFO line per request, naming its route template."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            log.info("%s %s %d %.1fms", scope.get("method", "?"), route, status,
                     (time.perf_counter() - started) * 1000)
