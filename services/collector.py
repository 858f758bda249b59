"""Python's cyclic garbage collector, paused while big acyclic structures are
built (a rules file, an index of 100k subscriptions).

Loading 100k rules makes millions of small objects, and each collection they
set off walks the whole growing heap again: 70% of a YAML load's time, a
third of a subscription load's. Pausing loses nothing: what is built here
makes no reference cycles and is freed by reference counting, and any cycle
would be found by the first collection after."""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block, then back as it was (so pauses nest,
    and a caller that keeps it off for longer is not overruled)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
