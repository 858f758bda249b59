"""Exchange-rate sources: one pure adapter per publisher format.

A file adapter is a module with `NAME` and `parse(body: bytes) -> list[Quote]`
that raises `RateFormatError` on a malformed file. `generic_json.parse(body,
config)` and `constant.quotes(config, now)` take their configuration too.
Explicit registry: one line per adapter, no scanning.
"""
from __future__ import annotations

from services.fx.sources import cbr, cbu, constant, ecb, generic_json, nbk, nbk_rss, nbkr, nbt
from services.fx.sources.common import RateConfigError, RateFormatError

# Publisher files: `tulpar fx fetch --source NAME` and the poller use these.
FILE_ADAPTERS = {
    "nbk": nbk,
    "nbk-rss": nbk_rss,
    "nbkr": nbkr,
    "cbu": cbu,
    "nbt": nbt,
    "cbr": cbr,
    "ecb": ecb,
}

# Every adapter, including the configured ones.
ADAPTERS = {
    **FILE_ADAPTERS,
    "generic-json": generic_json,
    "constant": constant,
}

__all__ = ["ADAPTERS", "FILE_ADAPTERS", "RateConfigError", "RateFormatError"]
