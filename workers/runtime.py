"""What a worker process loads once: settings, config, store, subscriptions, queue.
Rebuilt when the config file changes (workers/configfile.py), so editing
subscriptions needs no restart."""
from __future__ import annotations

from dataclasses import dataclass, replace

from services import config as config_mod
from services.config import Config
from services.delivery.queue import Queue
from services.polling import Subscriptions
from services.settings import Settings
from services.store import Store
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
        store = Store(settings.db_url)
        store.create_schema()
        _current = Runtime(file.settings, settings, file.config, Subscriptions.of(file.config.subscriptions),
                           store, Queue(settings.redis_url), file)
    elif _current.config_file.changed():
        cfg = _current.config_file.config
        _current = replace(_current, settings=config_mod.settings_for(cfg, _current.base_settings), config=cfg,
                           subscriptions=Subscriptions.of(cfg.subscriptions))
    return _current
