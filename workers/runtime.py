"""What a worker process loads once: settings, config, store, classifier, queue.
Reloaded when the config file changes, so editing subscriptions needs no restart."""
from __future__ import annotations

from dataclasses import dataclass

from services import config as config_mod
from services.classify import Classifier
from services.config import Config
from services.pipeline_fx import FxSubscription, fx_subscriptions
from services.queue import Queue
from services.settings import Settings
from services.store import Store


@dataclass
class Runtime:
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
    settings = _current.settings if _current else Settings()
    mtime = settings.config.stat().st_mtime
    if _current is None or _current.config_mtime != mtime:
        cfg = config_mod.load(settings.config)
        if cfg.allow_private_targets:
            # The config may open loopback/private targets (the demo's sinks).
            settings = settings.model_copy(update={"allow_private_targets": True})
        if _current is None:
            store = Store(settings.db_url)
            store.create_schema()
            queue = Queue(settings.redis_url)
        else:
            store, queue = _current.store, _current.queue
        _current = Runtime(settings, cfg, Classifier(cfg.subscriptions), fx_subscriptions(cfg.subscriptions),
                           store, queue, mtime)
    return _current
