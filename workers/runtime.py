"""What a worker process loads once: settings, config, store, classifier, queue.
Reloaded when the config file changes, so editing subscriptions needs no restart."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from services import config as config_mod
from services.news.classify import Classifier
from services.config import Config
from services.fx.pipeline import FxSubscription, fx_subscriptions
from services.delivery.queue import Queue
from services.settings import Settings
from services.store import Store


log = logging.getLogger("tulpar.runtime")


@dataclass
class Runtime:
    base_settings: Settings  # from the environment, before the config's overrides
    settings: Settings
    config: Config
    classifier: Classifier
    fx_subscriptions: list[FxSubscription]
    store: Store
    queue: Queue
    config_mtime: float


_current: Runtime | None = None


def runtime() -> Runtime:
    global _current
    base = _current.base_settings if _current else Settings()
    mtime = base.config.stat().st_mtime
    if _current is None or _current.config_mtime != mtime:
        try:
            cfg = config_mod.load(base.config, base)
        except config_mod.ConfigError as exc:
            if _current is None:
                raise
            # A half-saved or mistyped edit must not stop a running service:
            # keep the last good config and say why the new one was refused.
            log.error("config change refused, still running the previous one: %s", exc)
            _current.config_mtime = mtime
            return _current
        settings = config_mod.settings_for(cfg, base)
        if _current is None:
            store = Store(settings.db_url)
            store.create_schema()
            queue = Queue(settings.redis_url)
        else:
            store, queue = _current.store, _current.queue
        _current = Runtime(base, settings, cfg, Classifier(cfg.subscriptions), fx_subscriptions(cfg.subscriptions),
                           store, queue, mtime)
    return _current
