"""What lets an object be shared by the threads of one process (the poll
worker runs its polls in threads: workers/runtime.py)."""
from __future__ import annotations

import functools


def synchronized(method):
    """The method runs holding its object's `lock` (an RLock, so that one
    such method may call another)."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self.lock:
            return method(self, *args, **kwargs)
    return locked
