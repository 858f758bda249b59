"""`tulpar status` on a real outbox (SQLite; PostgreSQL too when DATABASE_URL
is set): the given-up deliveries beside the lines it always printed."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from services.delivery import channels
from services.delivery import outbox
from services.delivery.channels.errors import PermanentError, RetryableError
from services.cli import main
from services.settings import Settings
from services.store.db import NewDelivery

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc)
TOKEN = "AbCdEfGhIjKlMnOpQrStUvWx"
SECRET_HOOK = f"https://hooks.example.com/services/T0001/B0002/{TOKEN}"


@pytest.fixture
def run_status(store, db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)

    def run(*args) -> tuple[int, str]:
        code = main(["status", *args])
        return code, capsys.readouterr().out
    return run


def fill(store, monkeypatch, given_up: int, permanent: int, sent: int) -> list[int]:
    """Deliveries driven through the real outbox with a scripted channel;
    returns the given-up ids, oldest first."""
    settings = Settings(retry_schedule="1m")  # two attempts, then given up
    script: dict[str, list] = {}

    def fake(target, payload, *, settings, idempotency_key, secret=None):
        error = script[idempotency_key].pop(0)
        if error:
            raise error

    monkeypatch.setattr(channels, "deliver", fake)
    kinds = ["given-up"] * given_up + ["permanent"] * permanent + ["sent"] * sent
    ids = store.commit_poll(
        source="wire", url="http://w/feed", etag=None, last_modified=None, seen_ids=[], now=T0,
        deliveries=[NewDelivery(f"{kind}-{n}", "wire", f"a{n}", f"sub-{n}", SECRET_HOOK, {})
                    for n, kind in enumerate(kinds)])
    out = []
    for n, (i, kind) in enumerate(zip(ids, kinds)):
        key, start = f"{kind}-{n}", T0 + timedelta(hours=n)
        if kind == "given-up":
            script[key] = [RetryableError("webhook answered 503", target=SECRET_HOOK)] * 2
            outbox.attempt(store, i, settings, lambda: start)
            assert outbox.attempt(store, i, settings, lambda: start + timedelta(minutes=2)) == "failed"
            out.append(i)
        elif kind == "permanent":
            script[key] = [PermanentError("webhook answered 410 Gone", target=SECRET_HOOK)]
            outbox.attempt(store, i, settings, lambda: start)
        else:
            script[key] = [None]
            outbox.attempt(store, i, settings, lambda: start)
    return out


def test_given_up_deliveries_are_counted_and_the_newest_listed(store, run_status, monkeypatch):
    given_up = fill(store, monkeypatch, given_up=6, permanent=1, sent=1)
    # A row written before errors were redacted at the source: status redacts it.
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE delivery SET last_error = :e WHERE id = :i"),
                     {"e": f"gave up after 2 attempts: POST {SECRET_HOOK} timed out", "i": given_up[-1]})

    code, out = run_status("--json")
    report = json.loads(out)
    assert code == 1 and report["healthy"] is False  # failed deliveries: unchanged rule
    assert report["deliveries"] == {"failed": 7, "sent": 1}
    assert len(report["recent_failures"]) == 5  # still there, as before
    assert report["given_up"]["count"] == 6
    recent = report["given_up"]["recent"]
    assert [g["id"] for g in recent] == given_up[::-1][:5]  # newest first, five of them
    newest = recent[0]
    assert newest["subscription"] == "sub-5" and newest["attempts"] == 2
    assert newest["at"] == (T0 + timedelta(hours=5, minutes=2)).isoformat()
    assert newest["channel"] == "https://hooks.example.com/services/T0001/B0002/***"
    assert newest["error"].startswith("gave up after 2 attempts: POST https://hooks.example.com/")
    assert recent[1]["error"].startswith("gave up after 2 attempts: webhook answered 503")
    assert TOKEN not in out

    code, text = run_status()
    assert code == 1 and TOKEN not in text
    lines = text.splitlines()
    # The lines it always printed, then the given-up ones.
    assert "deliveries: pending 0, sending 0, retrying 0, sent 1, failed 7" in lines
    assert sum(line.startswith("  failed #") for line in lines) == 5
    assert "given up: 6 (retry schedule ran out; newest first)" in lines
    gave_up = [line for line in lines if line.startswith("  gave up #")]
    assert len(gave_up) == 5
    assert gave_up[0].startswith(f"  gave up #{given_up[-1]} sub-5 -> https://hooks.example.com/services/"
                                 f"T0001/B0002/*** after 2 attempts at {(T0 + timedelta(hours=5, minutes=2)).isoformat()}: ")
    assert lines.index("given up: 6 (retry schedule ran out; newest first)") > lines.index(
        "deliveries: pending 0, sending 0, retrying 0, sent 1, failed 7")


@pytest.mark.parametrize("permanent, code", [(0, 0), (1, 1)], ids=["all sent: healthy", "a 410: unhealthy"])
def test_nothing_given_up(store, run_status, monkeypatch, permanent, code):
    fill(store, monkeypatch, given_up=0, permanent=permanent, sent=2)
    status, out = run_status("--json")
    report = json.loads(out)
    assert status == code and report["healthy"] is (code == 0)
    assert report["given_up"] == {"count": 0, "recent": []}
    assert len(report["recent_failures"]) == permanent
    status, text = run_status()
    assert status == code and "given up: 0" in text.splitlines()
    assert "  gave up #" not in text
