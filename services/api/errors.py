"""One error body for every failure the API answers:

    {"error": {"code": "invalid", "message": "...", "field": "query", "column": 7}}

`code` is stable and machine-readable, `message` is for people, `field` names
the input at fault (`name`, `channels[1]`, `fx.pair`, `cursor`) or is null,
and `column` (1-based, rules only) points into a query, like `tulpar rules
check`. The handlers here turn the account layer's errors, FastAPI's own
validation errors, Starlette's 404/405 and anything unexpected into it.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.accounts.errors import AccountError, Conflict, Invalid, NotFound

log = logging.getLogger(__name__)

STATUS = {NotFound: 404, Invalid: 422, Conflict: 409}
# Starlette's own HTTP errors (unknown route, wrong method, ...) by status.
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "too_large",
         415: "unsupported_media_type", 422: "invalid", 429: "rate_limited", 503: "not_ready"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    column: int | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def body(code: str, message: str, field: str | None = None, column: int | None = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if column is not None:
        error["column"] = column
    return {"error": error}


def reply(status: int, code: str, message: str, field: str | None = None, column: int | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body(code, message, field, column), status_code=status, headers=headers)


_DESCRIPTIONS = {400: "Malformed JSON", 401: "Missing or bad credentials", 404: "No such object (for this tenant)",
                 409: "Conflicts with what exists (a name taken)", 413: "Request body too large",
                 422: "Invalid input: `field` names it; a bad rule has `column`",
                 429: "Rate limit: see Retry-After", 503: "Not ready"}


def responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` for a route: each status with the error body."""
    out: dict[int | str, dict] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "seconds until the limit resets",
                                                "schema": {"type": "integer"}}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
        out[status] = entry
    return out


def field_of(loc: tuple | list) -> str | None:
    """FastAPI's error location as our field: ("body", "fx", "pair") -> "fx.pair",
    ("body", "channels", 1) -> "channels[1]", ("query", "limit") -> "limit".
    A discriminated union's tag step (("body", "webhook", "url")) is dropped."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] in ("webhook", "email"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).startswith("function-") or "[" in str(p):
            continue  # pydantic's internal steps (validators, union members)
        else:
            out += f".{p}" if out else str(p)
    return out or None


def _validation_reply(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"type": "", "loc": (), "msg": "invalid request"}
    kind, field = first.get("type", ""), field_of(first.get("loc", ()))
    if kind == "json_invalid":
        return reply(400, "malformed_json", "the body is not valid JSON")
    ctx = first.get("ctx") or {}
    if kind == "extra_forbidden":
        message = "unknown field"
    elif kind == "missing":
        message = "is required"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        field = ".".join(filter(None, [field, str(ctx.get("discriminator", "type")).strip("'")]))
        message = f"is one of {ctx.get('expected_tags', 'the known types')}"
    elif field is None and kind in ("model_attributes_type", "dict_type", "model_type"):
        message = "must be a JSON object, sent with Content-Type: application/json"
    else:
        message = str(first.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
    if field is None and first.get("loc", ())[:1] == ("body",):
        message = ("the body " if message.startswith(("is ", "must ")) else "the body: ") + message
    more = len(errors) - 1
    if more > 0:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return reply(422, "invalid", message, field)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return reply(exc.status, exc.code, exc.message, exc.field, headers=exc.headers)

    @app.exception_handler(AccountError)
    async def _account(request: Request, exc: AccountError):
        status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 422)
        return reply(status, exc.code, exc.message, exc.field, exc.extra.get("column"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return _validation_reply(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = {404: "no such route", 405: "method not allowed here"}.get(exc.status_code, str(exc.detail))
        return reply(exc.status_code, CODES.get(exc.status_code, "error"), message,
                     headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Logged with its traceback through the redacting handlers (services/logs.py).
        log.error("unexpected error on %s %s", request.method, _route_of(request), exc_info=exc)
        return reply(500, "internal", "something went wrong on our side; it was logged")


def _route_of(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(unmatched route)"


def links(out: dict, parameter: str, *operations: str) -> dict:
    """Add OpenAPI links from a creation's 201 to the operations that take its id."""
    out.setdefault(201, {})["links"] = {
        op: {"operationId": op, "parameters": {parameter: "$response.body#/id"}} for op in operations}
    return out
