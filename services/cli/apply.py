"""`tulpar apply -f FILE [--tenant NAME] [--dry-run]`: make a tenant's
subscriptions and channels those of the file's `subscriptions:` section
(services/accounts/configcode.py; docs/config-as-code.md).

Prints the difference first (`+` added, `~` changed and how, `-` removed;
channels by target, secrets never), then applies it; the same file again
prints "no changes". A tenant that does not exist is created, and its API
key printed once; so is the signing secret of each webhook channel created.
Exit 0 when done, 2 for a bad file (file:line: field: message, as the config
loader says it), a bad tenant name or a database that needs
`tulpar db upgrade`."""
from __future__ import annotations

import sys

from services.accounts.configcode import DEFAULT_TENANT


def register(sub) -> None:
    p = sub.add_parser("apply", help="make a tenant's subscriptions and channels match a config file")
    p.add_argument("-f", "--file", required=True, help="config YAML (its subscriptions: section); - reads stdin")
    p.add_argument("--tenant", default=DEFAULT_TENANT,
                   help=f"tenant name (default: {DEFAULT_TENANT}); created when missing")
    p.add_argument("--dry-run", action="store_true", help="print the difference, change nothing")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from datetime import datetime, timezone

    from services.accounts import configcode
    from services.accounts.errors import AccountError
    from services.config import ConfigError
    from services.settings import Settings
    from services.store import schema

    settings = Settings()
    try:
        if args.file == "-":
            desired = configcode.load_stream(sys.stdin.buffer, "<stdin>", settings)
        else:
            desired = configcode.load(args.file, settings)
    except ConfigError as exc:
        print(f"tulpar apply: {exc}", file=sys.stderr)
        return 2
    try:
        store = schema.open_migrated(settings.db_url)
    except schema.SchemaError as exc:  # not migrated, or no database at all
        print(f"tulpar apply: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            done = configcode.apply(store, args.tenant, desired, settings, datetime.now(timezone.utc),
                                    dry_run=args.dry_run)
        except AccountError as exc:
            where = "--tenant" if exc.field in ("name", "tenant") else exc.field
            print(f"tulpar apply: {where + ': ' if where else ''}{exc.message}", file=sys.stderr)
            return 2
        print_result(done, desired, args.tenant, dry_run=args.dry_run)
        return 0
    finally:
        store.dispose()


def print_result(done, desired, tenant: str, *, dry_run: bool, out=None) -> None:
    out = out or sys.stdout
    d = done.diff
    print(f"{desired.file} -> tenant {tenant}" + (" (dry run: nothing is written)" if dry_run else ""),
          file=out)
    if desired.ignored_sources:
        print(f"sources: {desired.ignored_sources} ignored (operator configuration: TULPAR_CONFIG, "
              "not a tenant's)", file=out)
    for line in d.lines():
        print(line, file=out)
    for note in d.notes:
        print(f"note: {note}", file=out)
    if d.empty:
        print("no changes", file=out)
        return
    if dry_run:
        print(f"would change: {d.counts()}", file=out)
        return
    if done.api_key:
        print(f"tenant {tenant} created; its API key (shown once, stored hashed): {done.api_key}", file=out)
    for target, secret in done.webhook_secrets.items():
        from services.redact import redact

        print(f"webhook {redact(target)}: signing secret (shown once): {secret}", file=out)
    print(f"applied: {d.counts()}", file=out)
