"""The HTTP API (`tulpar api`; docs/api.md): FastAPI over services/accounts/.

    app.py            create_app(settings, store): routes, errors, limits, access log
    auth.py           admin token and API keys (Authorization: Bearer ...)
    context.py        what a handler works with; the best-effort queue; id and cursor checks
    errors.py         the one error body and the handlers that produce it
    schemas.py        request and response models (the OpenAPI document comes from them)
    limits.py         per-key rate limit (Redis) and the request body cap
    access.py         the access log by route, and the log filter for keys and tokens
    tenants.py, channels.py, subscriptions.py, rules.py, deliveries.py, health.py: the routes
"""
