"""`tulpar status`: source health and the delivery outbox at a glance.
Exit 1 when a source is failing or a delivery failed for good, so a cron job
or a container health check can watch it."""
from __future__ import annotations

import json
import sys

GIVEN_UP_SHOWN = 5


def register(sub) -> None:
    p = sub.add_parser("status", help="source health and delivery counts")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from services.redact import redact, redact_text
    from services.settings import Settings
    from services.store import schema
    from services.store.models import DeliveryStatus

    try:
        store = schema.open_migrated(Settings().db_url)
    except schema.SchemaError as exc:  # not migrated, or no database at all
        print(f"tulpar: {exc}", file=sys.stderr)
        return 2
    sources = [{
        "name": s.name, "url": redact(s.url),
        "last_ok_at": s.last_ok_at.isoformat() if s.last_ok_at else None,
        "consecutive_errors": s.consecutive_errors or 0,
        "last_error": redact_error(s.last_error, s.url, redact) if s.consecutive_errors else None,
    } for s in store.source_states()]
    counts = {str(status): n for status, n in store.delivery_counts().items()}
    # Errors are redacted when raised (services/delivery/channels/errors.py); redacting
    # again costs nothing and covers rows written before that, or by hand.
    failures = [{"id": d.id, "subscription": d.subscription, "channel": redact(d.channel),
                 "attempts": d.attempts, "error": redact_text(d.last_error or "") or None}
                for d in store.recent_failures()]
    given_up_count, given_up = store.given_up(GIVEN_UP_SHOWN)
    recent_given_up = [{"id": g.id, "subscription": g.subscription, "channel": redact(g.channel),
                        "attempts": g.attempts, "at": g.at.isoformat() if g.at else None,
                        "error": redact_text(g.error or "") or None} for g in given_up]
    unhealthy = any(s["consecutive_errors"] for s in sources) or bool(counts.get(DeliveryStatus.FAILED))
    if args.json:
        print(json.dumps({"sources": sources, "deliveries": counts, "recent_failures": failures,
                          "given_up": {"count": given_up_count, "recent": recent_given_up},
                          "healthy": not unhealthy}, ensure_ascii=False))
        return 1 if unhealthy else 0
    print("sources:")
    for s in sources or []:
        state = "ok" if not s["consecutive_errors"] else f"FAILING x{s['consecutive_errors']}: {s['last_error']}"
        print(f"  {s['name']:<24} last ok {s['last_ok_at'] or 'never':<32} {state}")
    if not sources:
        print("  (none polled yet)")
    print("deliveries: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in DeliveryStatus))
    for f in failures:
        print(f"  failed #{f['id']} {f['subscription']} -> {f['channel']} after {f['attempts']} attempts: {f['error']}")
    # Given up: the receiver kept failing for the whole retry schedule. Apart
    # from the failures above because these are the ones a fixed receiver
    # would still have wanted (a permanent error would fail again).
    print(f"given up: {given_up_count}" + (" (retry schedule ran out; newest first)" if given_up else ""))
    for g in recent_given_up:
        print(f"  gave up #{g['id']} {g['subscription']} -> {g['channel']} after {g['attempts']} attempts"
              f" at {g['at'] or 'unknown'}: {g['error']}")
    return 1 if unhealthy else 0


def redact_error(error: str | None, url: str, redact) -> str | None:
    # Source errors start with the URL, which may carry a token.
    return error.replace(url, redact(url)) if error else error
