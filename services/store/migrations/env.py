"""Alembic's entry point, run by services/store/schema.py (never by an
alembic.ini): the caller hands over an open connection in
`config.attributes["connection"]`, so the URL handling (postgres:// ->
psycopg 3, SQLite's lock timeout and pragmas) is the Store's, in one place."""
from __future__ import annotations

from alembic import context

from services.store.models import Base


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later migrations' alter_column and
        # drop_column become "copy the table" batches there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    # Inside the caller's transaction when it has one (schema.upgrade takes
    # PostgreSQL's lock in it first); Alembic commits nothing then.
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("tulpar's migrations run online only: use `tulpar db upgrade`")
run_migrations_online()
