"""Beat's schedule follows the config file (workers/beat.py): sources added,
removed or given another interval take effect without restarting beat. Run
on the workers' real Celery app against a real redis-server: the polls beat
sends are read back off the queue as the worker reads them."""
from __future__ import annotations

import os
import time

import pytest
from celery.worker.request import Request

from services import config as config_mod
from services.delivery.queue import POLL_QUEUE, POLL_TASK, SWEEP_TASK
from services.settings import Settings
from brokers import taken
from workers.beat import ConfigScheduler, entries

SOURCES = {
    "wire only": "  - {name: wire, url: 'https://news.example.com/rss', interval: 1h}\n",
    "wire and nbk": ("  - {name: wire, url: 'https://news.example.com/rss', interval: 1h}\n"
                     "  - {name: nbk, kind: nbk, url: 'https://nationalbank.kz/rss/get_rates.cfm', interval: 6h}\n"),
    "wire faster, late added, nbk gone": (
        "  - {name: wire, url: 'https://news.example.com/rss', interval: 1s}\n"
        "  - {name: late, url: 'https://late.example.com/rss', interval: 90s}\n"),
    "none": "",
}


def config_text(sources: str) -> str:
    return f"sources:\n{sources}subscriptions: []\n" if sources else "sources: []\n"


# (config's sources, the schedule: entry -> (task, seconds, args))
SCHEDULES = [
    ("none", {"sweep-outbox": (SWEEP_TASK, 30.0, ())}),
    ("wire and nbk", {"sweep-outbox": (SWEEP_TASK, 30.0, ()), "poll:wire": (POLL_TASK, 3600.0, ("wire",)),
                      "poll:nbk": (POLL_TASK, 21600.0, ("nbk",))}),
    ("wire faster, late added, nbk gone", {"sweep-outbox": (SWEEP_TASK, 30.0, ()),
                                           "poll:wire": (POLL_TASK, 1.0, ("wire",)),
                                           "poll:late": (POLL_TASK, 90.0, ("late",))}),
]


CELERYS_OWN = "celery.backend_cleanup"  # Celery adds it to every schedule


def shape(schedule: dict) -> dict:
    """name -> (task, seconds, args), from entries or from beat's ScheduleEntry
    objects (but Celery's own entry)."""
    out = {}
    for name, e in schedule.items():
        if name == CELERYS_OWN:
            continue
        if isinstance(e, dict):
            out[name] = (e["task"], float(e["schedule"]), tuple(e.get("args", ())))
        else:
            out[name] = (e.task, e.schedule.run_every.total_seconds(), tuple(e.args))
    return out


@pytest.mark.parametrize("sources, expected", SCHEDULES, ids=[s[0] for s in SCHEDULES])
def test_the_schedule_a_config_asks_for(sources, expected):
    cfg = config_mod.parse(config_text(SOURCES[sources]), "tulpar.yaml")
    assert shape(entries(cfg, Settings(sweep_interval=30))) == expected


@pytest.fixture
def config_file(tmp_path, monkeypatch, var_db):
    path = tmp_path / "tulpar.yaml"
    path.write_text(config_text(SOURCES["wire and nbk"]))
    monkeypatch.setenv("TULPAR_CONFIG", str(path))
    monkeypatch.setenv("TULPAR_SWEEP_INTERVAL", "30")
    return path


@pytest.fixture
def start_beat(config_file, worker_app, tmp_path):
    """Beat's scheduler as `celery beat` builds it: on the workers' app, with
    its schedule file; stopped (and synced) at the end."""
    started = []

    def start() -> ConfigScheduler:
        started.append(ConfigScheduler(app=worker_app, schedule_filename=str(tmp_path / "beat-schedule")))
        return started[-1]

    yield start
    for scheduler in started:
        scheduler.close()


def edit(path, sources: str, bump: int) -> None:
    path.write_text(config_text(sources) if sources is not None else "sources: [\n")
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + bump))  # mtime granularity can hide an edit


def run(scheduler: ConfigScheduler, seconds: float, until=lambda: False) -> None:
    """Beat's own loop (celery.beat.Service.start), for `seconds` or until `until()`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        delay = scheduler.tick()
        if delay and delay > 0:
            time.sleep(min(delay, 0.1))


def polls_sent(broker_url: str, worker_app) -> list:
    return [r.args for r in (Request(m, app=worker_app) for m in taken(broker_url, POLL_QUEUE))
            if r.task_name == POLL_TASK]


def test_the_schedule_follows_config_edits_without_a_restart(config_file, start_beat, broker, worker_app,
                                                           caplog):
    beat = start_beat()
    assert shape(beat.schedule) == dict(SCHEDULES[1][1])
    assert beat.max_interval <= 5  # beat looks at the file at least this often

    edit(config_file, SOURCES["wire faster, late added, nbk gone"], 10)
    beat.tick()
    assert shape(beat.schedule) == dict(SCHEDULES[2][1])
    # wire's 1 s interval takes effect at once: beat sends its polls.
    sent = []

    def two_polls() -> bool:
        sent.extend(polls_sent(broker, worker_app))
        return len(sent) >= 2

    run(beat, 10, until=two_polls)
    assert sent[:2] == [["wire"], ["wire"]]

    edit(config_file, None, 20)  # a broken edit: refused, the schedule kept
    beat.tick()
    assert "config change refused" in caplog.text and "tulpar.yaml" in caplog.text
    assert shape(beat.schedule) == dict(SCHEDULES[2][1])

    edit(config_file, SOURCES["none"], 30)  # every source removed: no more polls
    beat.tick()
    assert shape(beat.schedule) == dict(SCHEDULES[0][1]) and CELERYS_OWN in beat.schedule
    polls_sent(broker, worker_app)
    run(beat, 2.5)
    assert polls_sent(broker, worker_app) == []


def test_a_restarted_beat_keeps_each_polls_last_run(config_file, start_beat, broker, worker_app):
    edit(config_file, SOURCES["wire faster, late added, nbk gone"], 10)
    first = start_beat()
    run(first, 10, until=lambda: first.schedule["poll:wire"].total_run_count >= 1)
    ran = first.schedule["poll:wire"].last_run_at
    first.close()
    again = start_beat()
    # Not reset to "now": a 6-hourly source would otherwise wait 6 h after every restart.
    assert again.schedule["poll:wire"].last_run_at == ran
    assert again.schedule["poll:wire"].total_run_count >= 1
