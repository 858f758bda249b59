"""What a worker process loads once: settings, config, store, subscriptions, queue.

The subscriptions are the config file's (unless TULPAR_CONFIG_SUBSCRIPTIONS
is off) and the tenants' in the database (services/accounts/live.py): all
loaded on a process's first poll (one that only delivers never loads them),
then kept up to date -- a poll first applies the subscription changes logged
since the last one (`Runtime.subscriptions_now`), and a config file change
(workers/configfile.py) replaces only the file's subscriptions. Neither
needs a restart."""
from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from celery.signals import worker_init

from services import config as config_mod
from services.accounts.live import Live
from services.config import Config, Subscription
from services.delivery.queue import Queue
from services.polling import Subscriptions
from services.settings import Settings
from services.store import Store, schema
from workers.configfile import ConfigFile


class LazyLive:
    """The process's Live, loaded on first use: a pool process that only
    delivers never loads (or parses) a subscription."""

    def __init__(self, store: Store, config_subscriptions: Sequence[Subscription]):
        self.store, self.config_subscriptions = store, config_subscriptions
        self.loaded: Live | None = None

    def get(self) -> Live:
        if self.loaded is None:
            self.loaded = Live(self.store, self.config_subscriptions)
        return self.loaded

    def set_config(self, config_subscriptions: Sequence[Subscription]) -> None:
        self.config_subscriptions = config_subscriptions
        if self.loaded is not None:
            self.loaded.set_config(config_subscriptions)


@dataclass(frozen=True)
class Runtime:
    base_settings: Settings  # from the environment, before the config's overrides
    settings: Settings
    config: Config
    lazy_live: LazyLive
    store: Store
    queue: Queue
    config_file: ConfigFile

    @property
    def live(self) -> Live:
        return self.lazy_live.get()

    @property
    def subscriptions(self) -> Subscriptions:
        """As last refreshed."""
        return self.live.subscriptions

    def subscriptions_now(self) -> Subscriptions:
        """With every subscription change logged so far applied (one indexed
        query when there is none): what a poll matches."""
        self.live.refresh()
        return self.live.subscriptions


_current: Runtime | None = None


def config_subscriptions(cfg: Config, settings: Settings) -> Sequence[Subscription]:
    """The config file's subscriptions a worker matches: all, or none when
    TULPAR_CONFIG_SUBSCRIPTIONS is off (the file then only gives sources)."""
    return cfg.subscriptions if settings.config_subscriptions else ()


def runtime() -> Runtime:
    global _current
    if _current is None:
        file = ConfigFile(Settings())
        settings = config_mod.settings_for(file.config, file.settings)
        # Checked again in each pool process (the start check below ran in
        # the parent, and a database may be swapped meanwhile): a task then
        # fails with the same message instead of on a missing table.
        store = schema.open_migrated(settings.db_url)
        live = LazyLive(store, config_subscriptions(file.config, file.settings))
        _current = Runtime(file.settings, settings, file.config, live, store, Queue(settings.redis_url), file)
    elif _current.config_file.changed():
        cfg = _current.config_file.config
        _current.lazy_live.set_config(config_subscriptions(cfg, _current.base_settings))
        _current = replace(_current, settings=config_mod.settings_for(cfg, _current.base_settings), config=cfg)
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
