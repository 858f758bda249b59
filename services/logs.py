"""Logging for a tulpar process: one format, one level, every handler redacting.

The `tulpar` command calls `setup_logging` first thing. Celery installs its
own handlers when a worker or beat starts (after anything we set up), so
workers/app.py connects `redact_handlers` to Celery's `after_setup_logger` and
`after_setup_task_logger` signals, which fire right after it has done so.
"""
from __future__ import annotations

import logging
import sys

from services.redact import RedactingFilter
from services.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is written.

    main() also runs in-process (the tests, code that embeds it) where
    sys.stderr is swapped per call: a handler that kept the first call's stream
    would write into a closed capture later.
    """

    def __init__(self):
        logging.Handler.__init__(self)  # not StreamHandler's: it would pin the stream

    @property
    def stream(self):
        return sys.stderr


def setup_logging(level: int | str = logging.WARNING) -> None:
    """Records at `level` and above go to stderr as FORMAT; every handler redacts.

    Calling it again replaces the stderr handler it added, never doubles it.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    redact_handlers()


def redact_handlers(**_signal) -> None:
    """Give every handler in the process (any logger's) the redaction filter.

    Also a receiver for Celery's logging signals: it ignores their arguments
    and covers all handlers, the ones Celery just added among them.
    """
    redacting = RedactingFilter(_secrets())
    for handler in _all_handlers():
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)  # one filter, with the current secrets
        handler.addFilter(redacting)


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)  # not the placeholders
    ]
    handlers: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            handlers[id(handler)] = handler
    return list(handlers.values())


def _secrets() -> list[str]:
    try:
        return Settings().secret_values()
    except ValueError:
        # A malformed setting (pydantic's ValidationError is a ValueError):
        # the command that reads the settings reports it. The URL and whsec_
        # patterns still apply; only the literal values are unknown.
        return []
