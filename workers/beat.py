"""Beat's schedule follows the config file: one poll entry per source at the
source's interval, plus the outbox sweep.

`celery beat` and `celery worker -B` use ConfigScheduler (workers/app.py names
it): Celery's persistent scheduler, whose entries are rebuilt from the config
whenever the file's mtime changes -- a source added, removed or given another
interval takes effect without restarting beat. A broken edit is refused and
the schedule kept (workers/configfile.py).
"""
from __future__ import annotations

import logging

from celery.beat import PersistentScheduler

from services.config import Config
from services.delivery.queue import POLL_TASK, SWEEP_TASK
from services.settings import Settings
from workers.configfile import ConfigFile

log = logging.getLogger("tulpar.beat")


def entries(cfg: Config, settings: Settings) -> dict[str, dict]:
    """The schedule `cfg` asks for, as Celery's beat_schedule entries."""
    schedule = {"sweep-outbox": {"task": SWEEP_TASK, "schedule": settings.sweep_interval}}
    for source in cfg.sources:
        schedule[f"poll:{source.name}"] = {"task": POLL_TASK, "schedule": source.interval, "args": [source.name]}
    return schedule


class ConfigScheduler(PersistentScheduler):
    # The longest beat sleeps between looks at the schedule, and so at the
    # config file (Celery's default is 5 minutes; a stat is cheap).
    max_interval = 5.0

    def setup_schedule(self):
        from workers.runtime import require_database

        self.config_file = ConfigFile(Settings())
        # Beat itself writes nothing to the database, but it would schedule
        # polls and sweeps that all fail on an unmigrated one: refuse at
        # start, like the worker, naming `tulpar db upgrade`.
        require_database(self.config_file.settings)  # the URL is the environment's
        super().setup_schedule()

    def merge_inplace(self, b):
        # Celery merges app.conf.beat_schedule (empty here) into the stored
        # entries and drops every other one: merging the config's entries in
        # too keeps a poll that is still configured with its last run time.
        super().merge_inplace({**b, **entries(self.config_file.config, self.config_file.settings)})

    def tick(self, *args, **kwargs):
        if self.config_file.changed():
            self.merge_inplace(self.app.conf.beat_schedule)
            self.install_default_entries(self.schedule)  # Celery's own, as at setup
            self._heap = None  # an interval may have changed: order the entries again
            self.sync()
            log.info("beat: schedule follows %s: %s", self.config_file.settings.config,
                     ", ".join(sorted(self.schedule)))
        return super().tick(*args, **kwargs)
