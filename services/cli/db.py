"""`tulpar db upgrade` / `tulpar db current`: the database's schema version.

`upgrade` creates the database at DATABASE_URL (default: the SQLite file under
TULPAR_VAR_DIR), migrates an older one, or adopts one made before migrations
existed; run it before starting workers (`tulpar run` runs it itself).
Exit 0 when done, 2 when the URL names no database we can use."""
from __future__ import annotations

import sys

# Alembic and SQLAlchemy are imported in the handlers: other commands start fast.


def register(sub) -> None:
    p = sub.add_parser("db", help="create or migrate the database (tulpar db upgrade)")
    actions = p.add_subparsers(dest="db_action", required=True)
    up = actions.add_parser("upgrade", help="create or migrate the database at DATABASE_URL to this version")
    up.set_defaults(handler=handle_upgrade)
    cur = actions.add_parser("current", help="the database's schema revision and this version's; "
                                             "exit 1 when it needs `tulpar db upgrade`")
    cur.set_defaults(handler=handle_current)


def handle_upgrade(args) -> int:
    from services.settings import Settings
    from services.store import schema

    url = Settings().db_url
    try:
        done = schema.upgrade(url)
    except schema.SchemaError as exc:
        print(f"tulpar db upgrade: {exc}", file=sys.stderr)
        return 2
    print(done.describe(schema.shown(url)))
    return 0


def handle_current(args) -> int:
    from services.settings import Settings
    from services.store import schema

    url = Settings().db_url
    try:
        current = schema.current_revision(url)
    except schema.SchemaError as exc:
        print(f"tulpar db current: {exc}", file=sys.stderr)
        return 2
    head = schema.head_revision()
    state = "up to date" if current == head else f"run `{schema.UPGRADE_COMMAND}`"
    print(f"{schema.shown(url)}: at {current or 'none'}, this tulpar needs {head} ({state})")
    return 0 if current == head else 1
