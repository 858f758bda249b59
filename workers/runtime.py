"""What a worker process loads once: settings, config, store, subscriptions, queue.
Rebuilt when the config file changes (workers/configfile.py), so editing
subscriptions needs no restart."""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace

from celery.signals import worker_init

from services import config as config_mod
from services.config import Config
from services.delivery.queue import Queue
from services.polling import Subscriptions
from services.settings import Settings
from services.store import Store, schema
from workers.configfile import ConfigFile


@dataclass(frozen=True)
class Runtime:
    base_settings: Settings  # from the environment, before the config's overrides
    settings: Settings
    config: Config
    subscriptions: Subscriptions
    store: Store
    queue: Queue
    config_file: ConfigFile


_current: Runtime | None = None


def runtime() -> Runtime:
    global _current
    if _current is None:
        file = ConfigFile(Settings())
        settings = config_mod.settings_for(file.config, file.settings)
        # Checked again in each pool process (the start check below ran in
        # the parent, and a database may be swapped meanwhile): a task then
        # fails with the same message instead of on a missing table.
        store = schema.open_migrated(settings.db_url)
        _current = Runtime(file.settings, settings, file.config, Subscriptions.of(file.config.subscriptions),
                           store, Queue(settings.redis_url), file)
    elif _current.config_file.changed():
        cfg = _current.config_file.config
        _current = replace(_current, settings=config_mod.settings_for(cfg, _current.base_settings), config=cfg,
                           subscriptions=Subscriptions.of(cfg.subscriptions))
    return _current


def require_database(settings: Settings) -> None:
    """A worker or beat refuses to start on a database `tulpar db upgrade`
    has not brought to this code's schema: exit 2 with the message, which
    names that command. Checked once at start, on a throwaway Store: the
    tasks' own Store is opened in each pool process, after the fork."""
    try:
        schema.open_migrated(settings.db_url).dispose()
    except schema.SchemaError as exc:
        # sys.__stderr__: Celery has redirected sys.stderr into its logger,
        # which may not be set up yet; the message must reach the operator.
        print(f"tulpar: {exc}", file=sys.__stderr__, flush=True)
        raise SystemExit(2) from None


@worker_init.connect(weak=False)
def _check_database_at_start(**kwargs) -> None:
    # Celery logs and swallows a receiver's Exception, but SystemExit is not
    # one: the worker stops before it takes a task. (Imported with the tasks,
    # which the worker loads before it sends worker_init.) The database URL
    # comes from the environment alone (the config file cannot change it), so
    # the worker parent does not parse the config -- every query in it -- here.
    require_database(Settings())
