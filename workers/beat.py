"""Beat's schedule follows the config file: one poll entry per source at the
source's interval, plus the outbox sweep.

`celery beat` and `celery worker -B` use ConfigScheduler (workers/app.py names
it): Celery's persistent scheduler, whose entries are rebuilt from the config
whenever the file's mtime changes -- a source added, removed or given another
interval takes effect without restarting beat. A broken edit is refused and
the schedule kept (workers/configfile.py).

Polls are spread over their interval: each source's entry runs at a phase of
its own within the interval (`phase`, from a hash of the source's name: the
same across restarts and beats), so 1,000 sources at 30 s are sent ~33 a
second, not 1,000 in the same second.

A source whose last poll is still queued or running is not polled again:
beat sends a poll only after taking the source's gate in Redis (SET NX, the
poll's task id as value, expiring after the poll task's hard time limit),
and the poll task deletes its own gate when it finishes, whatever the outcome
(workers/tasks.py). A poll skipped that way is logged and counted
(ConfigScheduler.skipped). Polls sent by anything else (`tulpar poll`,
`tulpar run`'s first round, tests) take no gate and always run.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

from celery.beat import PersistentScheduler
from celery.schedules import schedstate, schedule

from services.config import Config
from services.delivery.queue import POLL_GATE, POLL_TASK, SWEEP_TASK, Queue
from services.settings import Settings
from workers.configfile import ConfigFile

log = logging.getLogger("tulpar.beat")
celery_log = logging.getLogger("celery.beat")  # where Celery logs "Sending due task"


def phase(name: str, seconds: float) -> float:
    """Where in each interval of `seconds` the entry `name` runs: uniform
    over [0, seconds), the same for the same name and interval."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 * seconds


def utc_now() -> datetime:
    """Now, aware, in UTC. Celery's own `app.now()` goes through its
    timezone helpers (localize, an ambiguity check via dateutil) on every
    call: beat asks several times per entry per tick, and at 1,000 sources
    that was 41% of beat's CPU (py-spy). Slots are computed on timestamps,
    so the zone of "now" does not matter, only that it is aware."""
    return datetime.now(timezone.utc)


class phased(schedule):
    """Every `run_every`, at `offset` seconds past each multiple of run_every
    since the epoch: a fixed slot in the interval, not "run_every after the
    last run" (which keeps every entry created together in one phase)."""

    def __init__(self, run_every, offset: float = 0.0, relative: bool = False, nowfun=None, app=None):
        super().__init__(run_every, relative, nowfun or utc_now, app)
        self.offset = float(offset) % self.seconds if self.seconds else 0.0

    def slot_after(self, moment: datetime) -> datetime:
        """The first slot strictly after `moment`."""
        period = self.seconds
        k = math.floor((moment.timestamp() - self.offset) / period) + 1
        return datetime.fromtimestamp(k * period + self.offset, timezone.utc)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.slot_after(self.maybe_make_aware(last_run_at)) - self.now()

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        due_at = self.slot_after(self.maybe_make_aware(last_run_at))
        if now >= due_at:
            return schedstate(is_due=True, next=(self.slot_after(now) - now).total_seconds())
        return schedstate(is_due=False, next=(due_at - now).total_seconds())

    def __repr__(self) -> str:
        return f"<freq: {self.human_seconds}, at +{self.offset:.3f}s>"

    def __eq__(self, other) -> bool:
        if isinstance(other, phased):
            return self.run_every == other.run_every and self.offset == other.offset
        return False

    def __hash__(self) -> int:
        return hash((self.run_every, self.offset))

    def __reduce__(self):
        return self.__class__, (self.run_every, self.offset, self.relative, self.nowfun)


def entries(cfg: Config, settings: Settings) -> dict[str, dict]:
    """The schedule `cfg` asks for, as Celery's beat_schedule entries."""
    schedule_ = {"sweep-outbox": {"task": SWEEP_TASK, "schedule": settings.sweep_interval}}
    for source in cfg.sources:
        name = f"poll:{source.name}"
        interval = float(source.interval)
        schedule_[name] = {"task": POLL_TASK, "schedule": phased(interval, phase(name, interval)),
                           "args": [source.name]}
    return schedule_


def gate_ttl(settings: Settings) -> float:
    """How long a poll's gate holds at most: the poll task's hard time limit."""
    from workers.app import time_limits

    return time_limits(settings)[POLL_TASK]["time_limit"]


class ConfigScheduler(PersistentScheduler):
    # The longest beat sleeps between looks at the schedule, and so at the
    # config file (Celery's default is 5 minutes; a stat is cheap).
    max_interval = 5.0
    # ... and the most often it looks at the file: with polls spread over
    # the interval beat ticks ~33 times a second at 1,000 sources, and a
    # stat on every tick was 14% of its CPU.
    config_look_every = 1.0
    _next_look = 0.0

    def setup_schedule(self):
        from workers.runtime import require_database

        self.config_file = ConfigFile(Settings())
        # Beat itself writes nothing to the database, but it would schedule
        # polls and sweeps that all fail on an unmigrated one: refuse at
        # start, like the worker, naming `tulpar db upgrade`.
        require_database(self.config_file.settings)  # the URL is the environment's
        self.gates = Queue(self.config_file.settings.redis_url)
        self.gate_ttl = gate_ttl(self.config_file.settings)
        self.skipped: Counter[str] = Counter()  # source -> polls skipped since start
        super().setup_schedule()

    def merge_inplace(self, b):
        # Celery merges app.conf.beat_schedule (empty here) into the stored
        # entries and drops every other one: merging the config's entries in
        # too keeps a poll that is still configured with its last run time.
        super().merge_inplace({**b, **entries(self.config_file.config, self.config_file.settings)})

    def tick(self, *args, **kwargs):
        now = time.monotonic()
        if now >= self._next_look and self._look(now):
            self.merge_inplace(self.app.conf.beat_schedule)
            self.install_default_entries(self.schedule)  # Celery's own, as at setup
            self._heap = None  # an interval may have changed: order the entries again
            self.sync()
            log.info("beat: schedule follows %s: %s", self.config_file.settings.config,
                     ", ".join(sorted(self.schedule)))
        return super().tick(*args, **kwargs)

    def _look(self, now: float) -> bool:
        self._next_look = now + self.config_look_every
        return self.config_file.changed()

    def adjust(self, n, drift=-0.010):
        # Celery wakes 10 ms before an entry is due and then ticks without
        # sleeping until it is: with polls spread ~30 ms apart at 1,000
        # sources that was ~34,000 ticks a second, a third of the time
        # spinning (a quarter of a core). A poll a millisecond late does not
        # matter: sleep until it is due, at least 1 ms.
        if n and n > 0:
            return max(n, 0.001)
        return n

    def schedules_equal(self, old_schedules, new_schedules):
        # Celery compares every entry field by field on every tick, in case
        # someone changed the schedule behind its back: at 1,000 sources that
        # was 59% of beat's CPU (py-spy; beat took a third of a core). Here
        # the entries change only in tick() above, when the config file does,
        # and that drops the heap itself; between two such changes only run
        # times advance, which the heap already follows. (Even comparing the
        # names on each tick cost 17% of what was left.)
        if old_schedules is None or new_schedules is None:
            return old_schedules is new_schedules
        return len(old_schedules) == len(new_schedules)

    def apply_entry(self, entry, producer=None):
        if entry.task != POLL_TASK or not entry.args:
            return super().apply_entry(entry, producer=producer)
        source = str(entry.args[0])
        gate, task_id = POLL_GATE + source, str(uuid.uuid4())
        try:
            taken = self.gates.acquire(gate, task_id, self.gate_ttl)
        except Exception as exc:  # Redis unreachable: the send would fail too
            log.error("beat: poll %s not sent: %s", source, exc)
            return None
        if not taken:
            self.skipped[source] += 1
            log.info("beat: poll %s skipped: its last poll is still queued or running "
                     "(%d skipped for it, %d in all since beat started)",
                     source, self.skipped[source], sum(self.skipped.values()))
            return None
        celery_log.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        gated = copy.copy(entry)
        gated.options = {**entry.options, "task_id": task_id}
        try:
            return self.apply_async(gated, producer=producer, advance=False)
        except Exception as exc:
            try:
                self.gates.release(gate, task_id)
            except Exception:  # Redis down: the gate expires on its own
                pass
            celery_log.error("Message Error: %s", exc, exc_info=True)
            return None

    def close(self):
        super().close()
        gates = getattr(self, "gates", None)
        if gates is not None:
            gates.close()
