"""The FastAPI application: create_app(settings, store) wires the routes
(one module per resource), the error body, the limits and the access log.
`tulpar api` (services/cli/api.py) serves it with uvicorn."""
from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from importlib import metadata

from fastapi import FastAPI

from services.api import channels, deliveries, errors, health, rules, subscriptions, tenants
from services.api.access import AccessLog
from services.api.context import Enqueuer
from services.api.limits import MAX_BODY, BodyLimit, RateLimiter, redis_client
from services.settings import Settings
from services.store import Store

log = logging.getLogger("tulpar.api")

DESCRIPTION = """News and currency alerts for Central Asia, over HTTP.

Send `Authorization: Bearer <api_key>` with every `/v1` request (the operator
creates tenants, and their keys, with the admin token). Errors are
`{"error": {"code", "message", "field"}}`; see docs/api.md."""


def _version() -> str:
    try:
        return metadata.version("tulpar")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_app(settings: Settings, store: Store | None = None, *, clock=_utcnow) -> FastAPI:
    """The API over `store` (default: the migrated database at settings.db_url,
    SchemaError otherwise; closed with the app). `clock` gives `now`."""
    owned = store is None
    if owned:
        from services.store import schema

        store = schema.open_migrated(settings.db_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if owned:
            # The preview index reads every stored article once (tens of
            # seconds at 100k): build it now, not in the first preview request.
            threading.Thread(target=_warm_preview, args=(store, settings, clock), daemon=True,
                             name="preview-warm-up").start()
        yield
        app.state.queue.close()
        if app.state.redis is not None:
            app.state.redis.close()
        if owned:
            store.dispose()

    app = FastAPI(title="tulpar", version=_version(), description=DESCRIPTION, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.settings, app.state.store, app.state.clock = settings, store, clock
    app.state.redis = redis_client(settings.redis_url)
    app.state.limiter = RateLimiter(app.state.redis, settings.api_rate_limit)
    app.state.queue = Enqueuer(settings.redis_url)
    errors.install(app)
    for module in (health, tenants, channels, subscriptions, rules, deliveries):
        app.include_router(module.router)
    _error_body_everywhere(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    app.add_middleware(AccessLog)  # outermost: it logs the 413s too
    return app


def _warm_preview(store: Store, settings: Settings, clock) -> None:
    from services.news import preview

    index = preview.index_for(store)
    try:
        with index.lock:
            index.refresh(store, clock(), settings.retention_days)
    except Exception:  # the first preview request builds it then, and says what failed
        log.exception("preview index warm-up failed")


def _error_body_everywhere(app: FastAPI) -> None:
    """FastAPI documents its validation errors as its own HTTPValidationError;
    ours answer with the error body (services/api/errors.py): say so."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            doc = plain()
            for ops in doc.get("paths", {}).values():
                for op in ops.values():
                    for response in op.get("responses", {}).values():
                        for content in response.get("content", {}).values():
                            if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                                content["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
            schemas = doc.get("components", {}).get("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
