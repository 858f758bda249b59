"""`tulpar export [--tenant NAME]`: a tenant's subscriptions and the channels
they use, in the config file's format (YAML on stdout), with no secrets;
`tulpar apply -f` of it changes nothing (docs/config-as-code.md).
Exit 2 for an unknown tenant or a database that needs `tulpar db upgrade`."""
from __future__ import annotations

import sys

from services.accounts.configcode import DEFAULT_TENANT


def register(sub) -> None:
    p = sub.add_parser("export", help="print a tenant's subscriptions as a config file (for tulpar apply)")
    p.add_argument("--tenant", default=DEFAULT_TENANT, help=f"tenant name (default: {DEFAULT_TENANT})")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from services.accounts import configcode
    from services.accounts.errors import AccountError
    from services.settings import Settings
    from services.store import schema

    settings = Settings()
    try:
        store = schema.open_migrated(settings.db_url)
    except schema.SchemaError as exc:
        print(f"tulpar export: {exc}", file=sys.stderr)
        return 2
    try:
        text = configcode.export(store, args.tenant, settings)
    except AccountError as exc:
        where = "--tenant: " if exc.field in ("name", "tenant") else ""
        print(f"tulpar export: {where}{exc.message}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    sys.stdout.write(text)
    return 0
