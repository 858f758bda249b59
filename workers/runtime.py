"""What a worker process loads once: settings, config, store, subscriptions, queue.

The subscriptions are the config file's (unless TULPAR_CONFIG_SUBSCRIPTIONS
is off) and the tenants' in the database (services/accounts/live.py), then
kept up to date -- a poll first applies the subscription changes logged
since the last one (`Runtime.subscriptions_now`), and a config file change
(workers/configfile.py) replaces only the file's subscriptions. Neither
needs a restart.

Loaded once per worker: a worker that consumes the poll queue builds its
runtime -- config, the subscriptions' index -- before it takes a task
(`_preload`, at celeryd_after_setup) and freezes it out of the garbage
collector's reach (`gc.freeze`). With a prefork pool (the Procfile's
default, and `tulpar run`'s all-queues worker) the pool forks after the
load: its processes share the pages copy-on-write at first, but CPython's
reference counts write to every object a match reads, so each process
copies what it touches (measured at 100k: 2 pool processes took the tree
from ~520 to ~880 MB PSS within minutes). The Procfile therefore replaces
a pool process after TULPAR_POLL_MAX_TASKS polls (Celery's
--max-tasks-per-child): the new one is a fresh fork, sharing again. Just
before each fork the parent applies the changes logged so far
(`_refresh_before_fork`), so a new process starts from now. Each pool
process opens its own database and broker connections (`_after_fork`) and
applies the changes logged since its fork at its first poll. With `--pool threads`
(TULPAR_POLL_POOL=threads) the polls run in threads of the one process:
one copy of the index (100k subscriptions: ~470 MB for the whole worker),
each change applied once, but one core for every poll's Python work. The
objects shared between threads say how (services/threads.py).

A worker that only delivers (`-Q deliver`) loads nothing in the parent, and
its pool processes never load a subscription (LazyLive); nor does the
parent read the config file then. Its pool is prefork: a delivery's hard
time limit, which keeps it inside its claim's lease (workers/app.py), is
enforced only there.

Celery enforces no time limit on a threads pool: a poll's own steps bound
it instead (one deadline for the whole fetch, services/net/httpclient.py;
the database's lock timeout), and its source's poll gate still expires
after the poll's hard time limit (workers/beat.py)."""
from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from celery import bootsteps
from celery.signals import celeryd_after_setup, worker_init, worker_process_init

from services import collector
from services import config as config_mod
from services.accounts.live import Live
from services.config import Config, Subscription
from services.delivery.queue import POLL_GATE, POLL_QUEUE, Queue
from services.polling import Subscriptions
from services.settings import Settings
from services.store import Store, schema
from services.threads import synchronized
from workers.app import app
from workers.configfile import ConfigFile

log = logging.getLogger("tulpar.runtime")


class LazyLive:
    """The process's Live, loaded on first use: a pool process that only
    delivers never loads (or parses) a subscription."""

    def __init__(self, store: Store, config_subscriptions: Sequence[Subscription]):
        self.store, self.config_subscriptions = store, config_subscriptions
        self.loaded: Live | None = None
        self.lock = threading.RLock()  # one load, even when threads ask at once

    @synchronized
    def get(self) -> Live:
        if self.loaded is None:
            self.loaded = load_frozen(self.store, self.config_subscriptions)
        return self.loaded

    @synchronized
    def set_config(self, config_subscriptions: Sequence[Subscription]) -> None:
        self.config_subscriptions = config_subscriptions
        if self.loaded is not None:
            self.loaded.set_config(config_subscriptions)


def load_frozen(store: Store, config_subscriptions: Sequence[Subscription]) -> Live:
    """Live(...), then everything alive moved out of the cyclic collector's
    reach (gc.freeze): the index is millions of objects that live as long as
    the process and make no cycles, so no later full collection rescans them
    (each would take a good part of a second at 100k subscriptions), and a
    process forked afterwards never writes to their pages for a collection.
    The collector stays off until then: switching it back on first would
    make it scan everything just loaded once more."""
    with collector.paused():
        live = Live(store, config_subscriptions)
        gc.freeze()
    return live


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
# The poll worker's tasks are threads of one process: one of them builds the
# runtime, or follows a config change, at a time.
_current_lock = threading.Lock()


def config_subscriptions(cfg: Config, settings: Settings) -> Sequence[Subscription]:
    """The config file's subscriptions a worker matches: all, or none when
    TULPAR_CONFIG_SUBSCRIPTIONS is off (the file then only gives sources)."""
    return cfg.subscriptions if settings.config_subscriptions else ()


def runtime() -> Runtime:
    with _current_lock:
        return _runtime()


def _runtime() -> Runtime:
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


def consumes_polls(worker) -> bool:
    """Whether a Celery worker takes polls (its queues after -Q/-X): only
    then do its pool processes match subscriptions."""
    return POLL_QUEUE in worker.app.amqp.queues.consume_from


def preload() -> Runtime:
    """Build this process's runtime with its subscriptions loaded, then move
    everything alive out of the collector's reach (gc.freeze): a process
    forked afterwards shares the pages copy-on-write, and its collections
    never write to them. No database connection is left open to cross the
    fork."""
    started, cpu = os.times().elapsed, time_cpu()
    rt = runtime()
    live = rt.live
    rt.store.dispose()
    gc.freeze()  # what was made since the load, too (the settings, the store)
    log.info("preloaded %d subscriptions for the pool in %.1f s (%.1f CPU-s), up to change %d",
             len(live.subscriptions.news or ()) + len(live.subscriptions.fx),
             os.times().elapsed - started, time_cpu() - cpu, live.applied)
    return rt


def time_cpu() -> float:
    t = os.times()
    return t.user + t.system


def free_poll_gates(settings: Settings, why: str = "left by an earlier worker") -> int:
    """A poll worker starting frees every source's poll gate (workers/beat.py).
    A worker killed mid-poll never releases its gate, and its unacknowledged
    poll comes back only after the broker's visibility timeout: the source
    would go unpolled until the gate expires (the poll's hard time limit,
    minutes). Freeing a gate whose poll is alive on another worker costs at
    most one extra poll, which the race-safe commit absorbs."""
    if not settings.redis_url:
        return 0
    queue = Queue(settings.redis_url)
    try:
        freed = queue.release_all(POLL_GATE)
    except Exception as exc:  # Redis not up yet: the gates expire on their own
        log.warning("could not free the poll gates (%s); they expire on their own", type(exc).__name__)
        return 0
    finally:
        queue.close()
    if freed:
        log.info("freed %d poll gates %s", freed, why)
    return freed


class FreePollGatesOnReconnect(bootsteps.StartStopStep):
    """A poll worker that reconnects to the broker frees the poll gates too.

    When redis-server dies and comes back (`tulpar run` restarts it), the
    worker loses the poll it had fetched but not acknowledged: it cannot put
    it back while the server is down, and the copy the server kept (append-
    only file) returns only after the visibility timeout, an hour. The gate
    beat set for that poll survives in the same file, so the source would go
    unpolled until the gate expires. At worst freeing costs one extra poll.
    """

    # Started after the consumer's connection, each time it is made: once at
    # start (restart_count 0; the gates were freed before the pool forked,
    # in _preload below) and again after every connection loss.
    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, c) -> None:
        if c.restart_count > 0 and c.controller is not None and consumes_polls(c.controller):
            free_poll_gates(Settings(), "after reconnecting to the broker")


# The worker imports this module (through workers.tasks) before it builds
# its consumer, so the step is in place by then.
app.steps["consumer"].add(FreePollGatesOnReconnect)


@celeryd_after_setup.connect(weak=False)
def _preload(instance=None, **kwargs) -> None:
    # Sent in the worker parent after its queues (-Q) and logging are set up
    # and before the pool forks.
    if instance is None:
        return
    if not consumes_polls(instance):
        # Nothing to load, but what the imports made is frozen all the same:
        # the pool processes' collections then never write to those pages,
        # which each pool process would otherwise end up copying.
        gc.freeze()
        return
    free_poll_gates(Settings())
    try:
        preload()
        os.register_at_fork(before=_refresh_before_fork)
    except Exception:
        # A broken config or an unreachable database: the pool processes
        # then load on their first poll and fail there with the message, as
        # a worker without a preload does.
        log.exception("preloading the subscriptions failed; each pool process loads its own")


def _refresh_before_fork() -> None:
    """In the poll worker's parent, just before it forks a pool process (at
    start, and whenever one is replaced after TULPAR_POLL_MAX_TASKS polls):
    apply the subscription changes logged since the parent loaded, so that a
    new process starts from now. Otherwise each replacement would apply every
    change made since the worker started -- a day's churn, every few minutes.
    No connection is left open to cross the fork, and what the refresh made
    is frozen like the rest. A failure only means the new process applies
    the changes itself, at its first poll."""
    rt = _current
    if rt is None or rt.lazy_live.loaded is None:
        return
    try:
        rt.live.refresh()
    except Exception as exc:
        log.warning("could not apply the subscription changes before forking (%s: %s); "
                    "the new pool process applies them", type(exc).__name__, exc)
    finally:
        rt.store.dispose()
        gc.freeze()


@worker_process_init.connect(weak=False)
def _after_fork(**kwargs) -> None:
    """In a pool process: what came from the parent keeps its loaded config
    and subscriptions, but connections are not shared across a fork -- the
    store's pool is dropped without closing the parent's, and the broker
    connection is new."""
    global _current
    if _current is None:
        return
    _current.store.engine.dispose(close=False)
    _current = replace(_current, queue=Queue(_current.settings.redis_url))
