"""`tulpar status`: source health and the delivery outbox at a glance.
Exit 1 when a source is failing or a delivery failed for good, so a cron job
or a container health check can watch it."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("status", help="source health and delivery counts")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    from services.redact import redact
    from services.settings import Settings
    from services.store import Store

    store = Store(Settings().db_url)
    store.create_schema()
    sources = [{
        "name": s.name, "url": redact(s.url),
        "last_ok_at": s.last_ok_at.isoformat() if s.last_ok_at else None,
        "consecutive_errors": s.consecutive_errors or 0,
        "last_error": redact_error(s.last_error, s.url, redact) if s.consecutive_errors else None,
    } for s in store.source_states()]
    counts = store.delivery_counts()
    failures = [{"id": d.id, "subscription": d.subscription, "channel": redact(d.channel),
                 "attempts": d.attempts, "error": d.last_error} for d in store.recent_failures()]
    unhealthy = any(s["consecutive_errors"] for s in sources) or bool(counts.get("failed"))
    if args.json:
        print(json.dumps({"sources": sources, "deliveries": counts, "recent_failures": failures,
                          "healthy": not unhealthy}, ensure_ascii=False))
        return 1 if unhealthy else 0
    print("sources:")
    for s in sources or []:
        state = "ok" if not s["consecutive_errors"] else f"FAILING x{s['consecutive_errors']}: {s['last_error']}"
        print(f"  {s['name']:<24} last ok {s['last_ok_at'] or 'never':<32} {state}")
    if not sources:
        print("  (none polled yet)")
    order = ("pending", "sending", "retrying", "sent", "failed")
    print("deliveries: " + ", ".join(f"{k} {counts.get(k, 0)}" for k in order))
    for f in failures:
        print(f"  failed #{f['id']} {f['subscription']} -> {f['channel']} after {f['attempts']} attempts: {f['error']}")
    return 1 if unhealthy else 0


def redact_error(error: str | None, url: str, redact) -> str | None:
    # Source errors start with the URL, which may carry a token.
    return error.replace(url, redact(url)) if error else error
