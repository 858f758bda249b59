"""The database schema's version: Alembic migrations (services/store/migrations/)
applied by `tulpar db upgrade`, and the check every process that uses the
database makes before it starts.

`upgrade(url)` creates a database, migrates an older one, or adopts one that
`Store.create_schema()` made before migrations existed (the baseline keeps
its tables and rows and stamps it). `require_migrated(store)` refuses a
database that is not at this code's head, naming the command that fixes it.
Alembic is configured here, in code: an installed tulpar needs no alembic.ini.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from services.errors import TulparError
from services.redact import redact
from services.store.db import Store
from services.store.models import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Alembic's `context` and `op` are process-wide proxies: two upgrades in one
# process (threads) would trample each other's, so they take turns here.
_ALEMBIC = threading.Lock()
# PostgreSQL advisory lock key of our own (any constant): two `tulpar db
# upgrade` at once (two containers starting, `tulpar run` beside a release
# step) take turns, and the second finds the first one's work done.
_PG_LOCK_KEY = 0x7475_6C70  # "tulp"
UPGRADE_COMMAND = "tulpar db upgrade"


class SchemaError(TulparError):
    """The database cannot be used as it is; `str()` says why and what to run."""


class NotMigrated(SchemaError):
    """The database is not at this code's schema revision."""


class DatabaseUnusable(SchemaError):
    """The URL names no database we can open (bad URL, missing driver, refused)."""


class MigrationFailed(SchemaError):
    """A migration itself failed (the database answered, the DDL did not run)."""


@dataclass(frozen=True)
class Upgrade:
    """What `upgrade` did: from None (an empty or pre-migration database) or a
    revision, to `to`; `tables_before` tells creating from adopting."""

    before: str | None
    to: str
    tables_before: bool

    def describe(self, shown_url: str) -> str:
        if self.before == self.to:
            return f"{shown_url}: already at {self.to}"
        if self.before is not None:
            return f"{shown_url}: migrated from {self.before} to {self.to}"
        if self.tables_before:
            return f"{shown_url}: adopted the tables made before migrations, now at {self.to}"
        return f"{shown_url}: created at {self.to}"


def _config(connection=None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}


def _current(connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def shown(url: str) -> str:
    """The URL as messages show it: a server's with its password masked; a
    SQLite one as is (a file path holds no secret, and redact() would fold
    the four slashes of an absolute path into a different-looking URL)."""
    return url if url.startswith("sqlite:") else redact(url)


def _open(url: str) -> Store:
    try:
        return Store(url)
    except (sa.exc.ArgumentError, ImportError, OSError) as exc:  # bad scheme, no driver, no directory
        raise DatabaseUnusable(f"cannot use the database at {shown(url)}: {exc}; "
                               f"check DATABASE_URL") from exc


def _unusable(url: str, exc: Exception) -> DatabaseUnusable:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return DatabaseUnusable(f"cannot open the database at {shown(url)}: {reason}; check DATABASE_URL")


def current_revision(url: str) -> str | None:
    """The revision the database is stamped with; None when it has none
    (empty, or made by create_schema() before migrations)."""
    store = _open(url)
    try:
        with store.engine.connect() as conn:
            return _current(conn)
    except sa.exc.DBAPIError as exc:
        raise _unusable(url, exc) from exc
    finally:
        store.dispose()


def upgrade(url: str, tries: int = 5, target: str = "head") -> Upgrade:
    """Bring the database at `url` to the head revision (see the module doc).
    Safe to run again (nothing to do) and beside another upgrade: the whole
    upgrade is one transaction, taken in turns (_one_transaction). A failure
    to connect is
    DatabaseUnusable; one while migrating is MigrationFailed, and the
    database is left as it was. `target` is for tests that start from an
    older revision."""
    from alembic import command

    store = _open(url)
    try:
        for n in range(1, tries + 1):
            before = "unknown"
            try:
                with _ALEMBIC, store.engine.connect() as conn:
                    _one_transaction(conn)
                    before = _current(conn)
                    # Ours only: a shared PostgreSQL schema may hold other applications' tables.
                    tables_before = bool(set(sa.inspect(conn).get_table_names()) & set(Base.metadata.tables))
                    command.upgrade(_config(conn), target)
                    conn.commit()
                    return Upgrade(before, _current(conn), tables_before)
            except sa.exc.DBAPIError as exc:
                if n < tries and _is_race(store, exc):
                    time.sleep(0.05 * n)
                    continue
                if before == "unknown":  # never got as far as reading its revision
                    raise _unusable(url, exc) from exc
                reason = str(exc.orig or exc).strip().splitlines()[0]
                raise MigrationFailed(f"migrating the database at {shown(url)} from {before or 'none'} to "
                                      f"{head_revision()} failed: {reason}") from exc
    finally:
        store.dispose()


def _one_transaction(conn) -> None:
    """Make the whole upgrade one transaction that upgraders take in turns:
    all of it or nothing (a failed migration leaves no half-made table that
    a second try would take for an adopted one), and the second of two
    upgraders at once reads the revision the first one committed."""
    if conn.dialect.name == "postgresql":
        # DDL is transactional; the lock is held until the commit.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # SQLite's DDL is transactional too, but Python's sqlite3 module
        # commits before each DDL statement on its own: take its hands off
        # (isolation_level None) and begin ourselves, taking the write lock
        # now (IMMEDIATE). commit() and rollback() still end it.
        conn.connection.dbapi_connection.isolation_level = None
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _is_race(store: Store, exc: sa.exc.DBAPIError) -> bool:
    # SQLite: another upgrader (or a worker writing) held the write lock
    # past the busy timeout; trying again is all there is to do.
    return store.engine.dialect.name == "sqlite" and "locked" in str(exc.orig).lower()


def require_migrated(store: Store, url: str | None = None) -> None:
    """Raise NotMigrated unless the store's database is at the head revision.
    `url` is what the message shows (default: the engine's, password masked)."""
    url = url or store.engine.url.render_as_string(hide_password=False)
    head = head_revision()
    try:
        with store.engine.connect() as conn:
            current = _current(conn)
    except sa.exc.DBAPIError as exc:
        raise _unusable(url, exc) from exc
    if current == head:
        return
    if current is not None and current not in _known_revisions():
        raise NotMigrated(f"the database at {shown(url)} is at {current}, newer than this tulpar "
                          f"knows (head {head}): run a tulpar that has it")
    raise NotMigrated(f"the database at {shown(url)} is not migrated (at {current or 'none'}, "
                      f"need {head}): run `{UPGRADE_COMMAND}`")


def open_migrated(url: str) -> Store:
    """A Store on `url` that is at the head revision, or SchemaError (the
    Store is closed again then)."""
    store = _open(url)
    try:
        require_migrated(store, url)
    except BaseException:
        store.dispose()
        raise
    return store
