"""The config file as a running process follows it: loaded again when its
mtime changes, so editing sources or subscriptions needs no restart. Used by
the tasks' runtime (workers/runtime.py) and by beat (workers/beat.py)."""
from __future__ import annotations

import logging
import os

from services import config as config_mod
from services.config import Config
from services.settings import Settings

log = logging.getLogger("tulpar.config")


class ConfigFile:
    """`settings.config`, loaded now (a broken file raises ConfigError: there
    is no previous config to keep running)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.mtime = _mtime(settings.config)
        self.config: Config = self._load()

    def changed(self) -> bool:
        """Whether the file changed since it was last read and gave a new
        config (now in `self.config`). A broken edit is refused -- logged, the
        last good config kept -- so a half-saved or mistyped file never stops
        a running service; the next edit is read again."""
        mtime = _mtime(self.settings.config)
        if mtime == self.mtime:
            return False
        self.mtime = mtime
        try:
            self.config = self._load()
        except config_mod.ConfigError as exc:
            log.error("config change refused, still running the previous one: %s", exc)
            return False
        return True


    def _load(self) -> Config:
        # Logged: a worker reads it once per worker (its parent, before the
        # pool forks) or once per pool process, and again only on a change.
        config = config_mod.load(self.settings.config, self.settings)
        log.info("config: read %s (pid %d): %d sources, %d subscriptions", self.settings.config,
                 os.getpid(), len(config.sources), len(config.subscriptions))
        return config


def _mtime(path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:  # gone for a moment (an editor's save): loading it says why
        return None
