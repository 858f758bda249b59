"""Logging set up for a tulpar process: secrets come out redacted from every
handler -- the one `tulpar` installs, ones that were there before, ones Celery
adds later -- in-process and from a real `tulpar` process's stderr."""
from __future__ import annotations

import base64
import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services import logs
from services.redact import RedactingFilter
from services.settings import Settings

SLACK_TOKEN = "XXXXXXXXXXXXXXXXXXXXXXXX"
WHSEC = "whsec_" + base64.b64encode(b"k" * 24).decode()  # one of a receiver's: not in our settings
SMTP_PASSWORD = "Pa55-word!"  # no URL, no pattern: only the configured value gives it away
REDIS_PASSWORD = "r3dis-pw"
RECORD = (f"POST https://hooks.slack.com/services/T00000000/B00000000/{SLACK_TOKEN} failed; "
          f"receiver secret {WHSEC}; smtp login tulpar/{SMTP_PASSWORD}; "
          f"broker redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")
LEAKS = [SLACK_TOKEN, WHSEC.removeprefix("whsec_"), SMTP_PASSWORD, REDIS_PASSWORD]
KEPT = ["https://hooks.slack.com/services/T00000000/B00000000/***", "receiver secret whsec_***",
        "smtp login tulpar/***", "redis://***@127.0.0.1:6379/0"]


def assert_redacted(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text
    for kept in KEPT:
        assert kept in text


@pytest.fixture
def clean_logging(monkeypatch):
    """The process's logging as it was, afterwards: the root level, its
    handlers, and every handler's filters."""
    monkeypatch.setenv("TULPAR_SMTP_PASSWORD", SMTP_PASSWORD)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    filters = {h: list(h.filters) for h in logs._all_handlers()}
    yield
    root.setLevel(level)
    root.handlers[:] = handlers
    for handler, kept in filters.items():
        handler.filters[:] = kept


def _raise_and_log(log: logging.Logger) -> None:
    try:
        raise RuntimeError(RECORD)
    except RuntimeError:
        log.exception("delivery failed")


@pytest.mark.parametrize("emit", [
    lambda log: log.warning(RECORD),
    lambda log: log.warning("delivery failed: %s", RECORD),
    lambda log: log.error("%(what)s", {"what": RECORD}),
    _raise_and_log,  # the traceback quotes the exception message
    lambda log: log.warning("%s and %s", RECORD),  # args that do not fit: logged, not raised
], ids=["message", "args", "mapping", "traceback", "broken-args"])
def test_setup_redacts_what_reaches_stderr(clean_logging, capsys, emit):
    logs.setup_logging()
    emit(logging.getLogger("services.delivery.outbox"))
    err = capsys.readouterr().err
    assert err.count("\n") >= 1 and " services.delivery.outbox: " in err
    assert_redacted(err)


@pytest.mark.parametrize("level, emitted, shown", [
    (logging.WARNING, logging.WARNING, True),
    (logging.WARNING, logging.INFO, False),
    ("INFO", logging.INFO, True),
    ("ERROR", logging.WARNING, False),
])
def test_level(clean_logging, capsys, level, emitted, shown):
    logs.setup_logging(level)
    logging.getLogger("tulpar.tasks").log(emitted, "poll kz-news")
    assert ("poll kz-news" in capsys.readouterr().err) is shown


def test_a_second_setup_replaces_the_handler_it_added(clean_logging, capsys):
    logs.setup_logging()
    logs.setup_logging()
    logging.getLogger("services").warning("once")
    assert capsys.readouterr().err.count("once") == 1


def test_handlers_there_before_and_added_later_redact(clean_logging):
    before, later = io.StringIO(), io.StringIO()
    own = logging.getLogger("test.logs.own")  # a library logger with a handler of its own
    own.addHandler(logging.StreamHandler(before))
    own.propagate = False
    try:
        logs.setup_logging()
        own.warning(RECORD)
        # As Celery does on start: a handler of its own on the root logger,
        # then its signal, which `redact_handlers` receives.
        handler = logging.StreamHandler(later)
        logging.getLogger().addHandler(handler)
        for _ in range(2):  # after_setup_logger, then after_setup_task_logger
            logs.redact_handlers(signal=object(), sender=None, logger=logging.getLogger(),
                                 loglevel=logging.INFO, logfile=None, format="%(message)s", colorize=False)
        logging.getLogger("tulpar.tasks").warning(RECORD)
    finally:
        own.handlers.clear()
        own.propagate = True
    assert_redacted(before.getvalue())
    assert_redacted(later.getvalue())
    # One redacting filter per handler, however often it runs.
    assert [type(f) for f in handler.filters] == [RedactingFilter]


@pytest.mark.parametrize("env, secrets", [
    ({}, []),
    ({"TULPAR_SMTP_PASSWORD": "pw1"}, ["pw1"]),
    ({"TULPAR_SMTP_PASSWORD": "pw1", "TULPAR_WEBHOOK_SECRET": WHSEC}, ["pw1", WHSEC]),
    # URL passwords are not listed: URL redaction hides them wherever a URL is.
    ({"REDIS_URL": "redis://:pw2@h:6379/0", "DATABASE_URL": "postgresql://u:pw3@h/db"}, []),
])
def test_secret_values_are_the_secretstr_settings(monkeypatch, env, secrets):
    for name in ("TULPAR_SMTP_PASSWORD", "TULPAR_WEBHOOK_SECRET", "REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert sorted(Settings().secret_values()) == sorted(secrets)


def clean_env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TULPAR_", "PYTHON"))}
    return environ | {"TULPAR_SMTP_PASSWORD": SMTP_PASSWORD} | extra


def test_a_real_tulpar_process_redacts_its_stderr(tmp_path):
    tulpar = Path(sys.executable).with_name("tulpar")
    assert tulpar.is_file(), f"no `tulpar` script beside {sys.executable}: install the project (make venv)"
    # The `tulpar` script itself; the record is logged when the command has
    # run (atexit, before logging shuts down), through whatever main() set up.
    wrapper = textwrap.dedent(f"""
        import atexit, logging, runpy, sys
        atexit.register(lambda: logging.getLogger("services.delivery.outbox").warning({RECORD!r}))
        sys.argv = ["tulpar", "rules", "check", "tenge"]
        runpy.run_path({str(tulpar)!r}, run_name="__main__")
    """)
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "WARNING services.delivery.outbox: POST https://hooks.slack.com/" in done.stderr
    assert_redacted(done.stderr)


CELERY = textwrap.dedent(f"""
    import logging, sys
    from celery import Celery
    from celery.signals import after_setup_logger, after_setup_task_logger
    from celery.utils.log import get_task_logger
    from services.logs import redact_handlers

    # The hook workers/app.py carries.
    after_setup_logger.connect(redact_handlers)
    after_setup_task_logger.connect(redact_handlers)

    app = Celery("t", broker="memory://")
    app.conf.worker_hijack_root_logger = False
    app.log.setup(loglevel="INFO", logfile=sys.argv[1])
    logging.getLogger("tulpar.tasks").warning({RECORD!r})
    get_task_logger("tulpar.deliver").warning({RECORD!r})
""")


def test_celery_handlers_redact_with_the_worker_hook(tmp_path):
    logfile = tmp_path / "worker.log"
    done = subprocess.run([sys.executable, "-c", CELERY, str(logfile)], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    lines = logfile.read_text().splitlines()
    assert len(lines) == 2  # the root's handler and the task logger's, both Celery's
    for line in lines:
        assert_redacted(line)
