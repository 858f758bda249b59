"""Beat's schedule follows the config file (workers/beat.py): sources added,
removed or given another interval take effect without restarting beat. Run
on the workers' real Celery app against a real redis-server: the polls beat
sends are read back off the queue as the worker reads them."""
from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from celery.worker.request import Request

from services import config as config_mod
import redis

from services.delivery.queue import POLL_GATE, POLL_QUEUE, POLL_TASK, SWEEP_TASK
from services.settings import Settings
from brokers import taken
from workers import beat as beat_mod
from workers.beat import ConfigScheduler, entries, phase, phased

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
            every = e["schedule"]
            seconds = every.run_every.total_seconds() if hasattr(every, "run_every") else float(every)
            out[name] = (e["task"], seconds, tuple(e.get("args", ())))
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
    beat.tick()  # the first tick looks at the file
    assert shape(beat.schedule) == dict(SCHEDULES[2][1])
    # wire's 1 s interval takes effect at once: beat sends its polls (each
    # once the last one ended, which frees the source's gate).
    sent = []

    def two_polls() -> bool:
        new = polls_sent(broker, worker_app)
        if ["wire"] in new:
            redis.Redis.from_url(broker).delete(POLL_GATE + "wire")  # as the poll does when it ends
        sent.extend(a for a in new if a == ["wire"])  # late's slot may fall in the window too
        return len(sent) >= 2

    run(beat, 10, until=two_polls)
    assert sent[:2] == [["wire"], ["wire"]], sent

    edit(config_file, None, 20)  # a broken edit: refused, the schedule kept
    # Beat looks at the file at most once a second (ticks come ~33 a second
    # at 1,000 sources): the edit is seen within that.
    run(beat, 3, until=lambda: "config change refused" in caplog.text)
    assert "config change refused" in caplog.text and "tulpar.yaml" in caplog.text
    assert shape(beat.schedule) == dict(SCHEDULES[2][1])

    edit(config_file, SOURCES["none"], 30)  # every source removed: no more polls
    run(beat, 3, until=lambda: shape(beat.schedule) == dict(SCHEDULES[0][1]))
    assert shape(beat.schedule) == dict(SCHEDULES[0][1]) and CELERYS_OWN in beat.schedule
    polls_sent(broker, worker_app)
    run(beat, 2.5)
    assert polls_sent(broker, worker_app) == []


def test_beat_looks_at_the_config_file_at_most_once_a_second(config_file, start_beat, monkeypatch):
    from workers import configfile

    beat = start_beat()
    stats = []
    real = configfile._mtime
    monkeypatch.setattr(configfile, "_mtime", lambda path: stats.append(path) or real(path))
    deadline = time.monotonic() + 2.2
    ticks = 0
    while time.monotonic() < deadline:
        beat.tick()
        ticks += 1
        time.sleep(0.01)
    assert ticks > 50 and 2 <= len(stats) <= 4, (ticks, len(stats))


def test_beat_sleeps_until_an_entry_is_due_rather_than_spinning(config_file, start_beat):
    # Celery's own adjust() wakes 10 ms early and then ticks without sleeping
    # until the entry is due: ~300 ticks per entry here, ~34,000 a second
    # with 1,000 sources spread over 30 s.
    edit(config_file, SOURCES["wire faster, late added, nbk gone"], 10)  # wire every 1 s
    beat = start_beat()
    ticks, deadline = 0, time.monotonic() + 3.0
    while time.monotonic() < deadline:  # celery.beat.Service.start's loop
        interval = beat.tick()
        ticks += 1
        if interval and interval > 0:
            time.sleep(interval)
    assert ticks < 100, ticks
    assert beat.schedule["poll:wire"].total_run_count >= 2  # and it did run


def test_schedule_times_are_aware_utc_without_celerys_timezone_helpers(config_file, start_beat):
    from datetime import timezone

    beat = start_beat()
    entry = beat.schedule["poll:wire"] if "poll:wire" in beat.schedule else next(
        e for n, e in beat.schedule.items() if n.startswith("poll:"))
    now = entry.schedule.now()
    assert now.tzinfo is not None and now.utcoffset().total_seconds() == 0
    assert entry.schedule.nowfun is not None  # not app.now


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


# --- polls spread over the interval --------------------------------------------

# (sources, interval s, at most this many polls in any 30th of the interval)
SPREADS = [(1000, 30, 60), (100, 30, 12), (1000, 3600, 60), (10, 1, 10)]


@pytest.mark.parametrize("n, interval, most", SPREADS, ids=[f"{n} sources every {i} s" for n, i, _ in SPREADS])
def test_polls_are_spread_over_the_interval_and_the_phases_are_stable(n, interval, most):
    sources = "".join(f"  - {{name: s{k}, url: 'https://s{k}.example.com/rss', interval: {interval}s}}\n"
                      for k in range(n))
    cfg = config_mod.parse(config_text(sources), "tulpar.yaml")
    schedule = entries(cfg, Settings())
    offsets = [e["schedule"].offset for name, e in schedule.items() if name.startswith("poll:")]
    assert len(offsets) == n and all(0 <= o < interval for o in offsets)
    # Evenly enough: 1,000 at 30 s are ~33 a second, not 1,000 in one.
    per_second = Counter(int(o * 30 / interval) for o in offsets)  # 30 bins over the interval
    assert max(per_second.values()) <= most
    # The same phases from a second beat, or after a restart.
    again = entries(config_mod.parse(config_text(sources), "tulpar.yaml"), Settings())
    assert [e["schedule"] for e in again.values()] == [e["schedule"] for e in schedule.values()]
    assert schedule["poll:s0"]["schedule"].offset == phase("poll:s0", interval)


START = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)  # a multiple of 30 s since the epoch


# (offset s, last run s after START, now s after START, (due?, next check in s)); interval 30 s
DUE = [
    (7.0, 0.0, 6.0, (False, 1.0)),     # first slot after the last run: START + 7
    (7.0, 0.0, 7.0, (True, 30.0)),     # due, the next at START + 37
    (7.0, 7.0, 20.0, (False, 17.0)),   # ran at its slot: the next one
    (7.0, 7.0, 40.0, (True, 27.0)),    # a late tick still runs it once
    (7.0, -100.0, 0.0, (True, 7.0)),   # slots missed while beat was down: once, then on phase
    (0.0, 0.0, 29.5, (False, 0.5)),
]


@pytest.mark.parametrize("offset, last, now, expected", DUE)
def test_a_phased_entry_is_due_at_its_slot(offset, last, now, expected):
    every = phased(30, offset, nowfun=lambda: START + timedelta(seconds=now))
    due, next_in = every.is_due(START + timedelta(seconds=last))
    assert (due, round(next_in, 6)) == expected
    assert phased(30, offset) == phased(30, offset) != phased(30, offset + 1)


# --- one poll per source at a time ---------------------------------------------

@pytest.fixture
def fast_wire(config_file, start_beat):
    edit(config_file, "  - {name: wire, url: 'https://news.example.com/rss', interval: 1s}\n", 10)
    return start_beat()


def gate(broker_url: str) -> str | None:
    value = redis.Redis.from_url(broker_url).get(POLL_GATE + "wire")
    return value.decode() if value else None


def test_a_source_whose_poll_is_queued_or_running_is_not_polled_again(fast_wire, broker, worker_app, caplog):
    beat = fast_wire
    sent = []
    run(beat, 5, until=lambda: bool(sent.extend(
        Request(m, app=worker_app) for m in taken(broker, POLL_QUEUE)) or sent))
    assert [r.args for r in sent] == [["wire"]]
    assert gate(broker) == sent[0].id  # held under the poll's own task id
    with caplog.at_level(logging.INFO, logger="tulpar.beat"):
        run(beat, 2.5)  # 2-3 more slots: the poll has not finished, so none sent
    assert polls_sent(broker, worker_app) == []
    assert beat.skipped["wire"] >= 2
    assert "poll wire skipped: its last poll is still queued or running" in caplog.text


def test_polling_resumes_once_the_poll_ends_whatever_its_outcome(fast_wire, broker, worker_app, monkeypatch):
    from workers import runtime as rt_mod
    from workers import tasks

    monkeypatch.setattr(rt_mod, "_current", None)
    beat = fast_wire

    def next_poll():
        requests = []
        run(beat, 5, until=lambda: bool(requests.extend(
            Request(m, app=worker_app) for m in taken(broker, POLL_QUEUE)) or requests))
        assert [r.args for r in requests] == [["wire"]]
        return requests[0]

    try:
        first = next_poll()
        # A poll sent by someone else (`tulpar poll`) ends: beat's gate stays.
        tasks.poll_source.apply(args=["wire"], task_id=str(uuid.uuid4()))
        assert gate(broker) == first.id
        # Beat's poll ends (a source gone from the config: "unknown source").
        monkeypatch.setattr(tasks, "_poll", lambda name: "unknown source")
        assert tasks.poll_source.apply(args=["wire"], task_id=first.id).get() == "unknown source"
        assert gate(broker) is None
        second = next_poll()
        # ... or fails: released all the same.

        def boom(name):
            raise RuntimeError("feed exploded")

        monkeypatch.setattr(tasks, "_poll", boom)
        assert tasks.poll_source.apply(args=["wire"], task_id=second.id).failed()
        assert gate(broker) is None
        next_poll()
    finally:
        if rt_mod._current is not None:
            rt_mod._current.store.dispose()
            rt_mod._current.queue.close()
        rt_mod._current = None


def test_a_gate_whose_poll_never_ends_runs_out_after_the_poll_time_limit(fast_wire, broker, worker_app):
    from workers.app import time_limits

    beat = fast_wire
    assert beat.gate_ttl == time_limits(Settings())[POLL_TASK]["time_limit"]
    beat.gate_ttl = 1.5  # as if the hard time limit were 1.5 s (a killed worker)
    run(beat, 5, until=lambda: gate(broker) is not None)
    assert polls_sent(broker, worker_app) == [["wire"]]
    ttl = redis.Redis.from_url(broker).pttl(POLL_GATE + "wire")
    assert 0 < ttl <= 1500
    run(beat, 1.0)
    assert polls_sent(broker, worker_app) == []  # still held
    run(beat, 3, until=lambda: bool(polls_sent(broker, worker_app)) if gate(broker) is None else False)
    run(beat, 2, until=lambda: gate(broker) is not None)
    assert gate(broker) is not None  # taken again by the next poll sent


def test_the_sweep_is_not_gated(config_file, start_beat, broker, worker_app, monkeypatch):
    monkeypatch.setenv("TULPAR_SWEEP_INTERVAL", "0.5")
    beat = start_beat()
    from services.delivery.queue import SWEEP_QUEUE

    sweeps = []
    run(beat, 5, until=lambda: len(sweeps.extend(
        m for m in taken(broker, SWEEP_QUEUE)) or sweeps) >= 2)
    assert len(sweeps) >= 2


def test_a_poll_worker_starting_frees_the_gates_a_killed_worker_left(broker):
    # A worker killed mid-poll never releases its gate; the next poll worker
    # to start frees them all, and nothing else.
    from workers.runtime import free_poll_gates

    r = redis.Redis.from_url(broker)
    r.set(POLL_GATE + "wire", "task-of-a-dead-worker", px=600_000)
    r.set(POLL_GATE + "nbk", "another", px=600_000)
    r.set("tulpar:sweep-lock", "held", px=600_000)
    settings = Settings().model_copy(update={"redis_url": broker})
    assert free_poll_gates(settings) == 2
    assert r.keys(POLL_GATE + "*") == []
    assert r.get("tulpar:sweep-lock") == b"held"
    assert free_poll_gates(settings) == 0
    r.delete("tulpar:sweep-lock")


@pytest.mark.timeout(90)
def test_a_poll_worker_frees_the_gates_when_it_reconnects_to_a_restarted_redis(tmp_path, var_db, monkeypatch):
    # redis-server killed and started again (as `tulpar run` does): the poll the
    # worker had fetched is lost until the visibility timeout, while its gate
    # comes back from the append-only file. The worker frees the gates once it
    # has reconnected; while it stays connected it leaves them alone.
    from services.local.redis_process import RedisProcess
    from .test_preload import Worker

    server = RedisProcess(tmp_path / "redis").start()
    worker = None
    try:
        monkeypatch.setenv("REDIS_URL", server.url)
        worker = Worker(tmp_path, dict(os.environ), queues=POLL_QUEUE, pool="solo", concurrency=1)
        worker.wait("the worker to be ready", lambda: " ready." in worker.log())
        r = redis.Redis.from_url(server.url)
        r.set(POLL_GATE + "wire", "a-poll-lost-with-the-server", px=600_000)
        r.set("tulpar:sweep-lock", "held", px=600_000)
        time.sleep(1.5)  # connected all along, and the file has the keys (fsync every second)
        assert r.get(POLL_GATE + "wire") == b"a-poll-lost-with-the-server"
        r.close()

        os.kill(server.proc.pid, 9)
        server.proc.wait()
        server.start()  # same port, same data directory
        r = redis.Redis.from_url(server.url)
        assert r.get("tulpar:sweep-lock") == b"held"  # the data came back with the server
        worker.wait("the gates to be freed after the reconnect",
                    lambda: r.get(POLL_GATE + "wire") is None and "freed 1 poll gates after reconnecting" in worker.log(),
                    timeout=45)
        assert r.get("tulpar:sweep-lock") == b"held"  # only the poll gates
        r.close()
    finally:
        if worker:
            worker.stop()
        server.stop()
