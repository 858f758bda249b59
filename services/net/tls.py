"""One TLS context per process for every outgoing HTTPS request (feeds and
webhooks): building a context re-reads the CA bundle, ~40 ms of CPU each time
(measured in docs/performance.md), which was most of a webhook delivery."""
from __future__ import annotations

import functools
import ssl

import certifi


@functools.cache
def client_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())
