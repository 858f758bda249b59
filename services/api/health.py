"""GET /healthz (the process answers) and GET /readyz (its database and
Redis answer too: 503 naming the one that does not)."""
from __future__ import annotations

from fastapi import APIRouter, Request

import sqlalchemy as sa

from services.api.errors import ApiError, responses
from services.api.schemas import Health, Ready
from services.redact import redact_text

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, operation_id="healthz", summary="The process is up")
def healthz():
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, operation_id="readyz", responses=responses(503),
            summary="The database (SELECT 1) and Redis (PING) answer")
def readyz(request: Request):
    state = request.app.state
    checks, failed = {}, []
    try:
        with state.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        failed.append(f"the database did not answer ({_reason(exc)})")
        checks["database"] = "failed"
    try:
        if state.redis is None:
            raise RuntimeError("REDIS_URL is not set")
        state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        failed.append(f"Redis did not answer ({_reason(exc)})")
        checks["redis"] = "failed"
    if failed:
        raise ApiError(503, "not_ready", "not ready: " + "; ".join(failed))
    return {"status": "ready", "checks": checks}


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return redact_text(f"{type(exc).__name__}: {text[0] if text else ''}")[:300]
