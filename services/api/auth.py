"""Who is asking. `POST /v1/tenants` takes the operator's admin token
(TULPAR_ADMIN_TOKEN; empty: no one may create tenants); every other /v1
route takes a tenant's API key and acts for that tenant only. Both come as
`Authorization: Bearer ...`; both are counted by the rate limiter first
(under a hash), so guessing keys is as slow as using one."""
from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.accounts import tenants
from services.api.errors import ApiError
from services.store.models import Tenant

api_key = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                     description="a tenant's API key (tlp_...), given once when the tenant is created")
admin_token = HTTPBearer(auto_error=False, scheme_name="AdminToken",
                         description="the operator's TULPAR_ADMIN_TOKEN")

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers=CHALLENGE)


def tenant(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(api_key)) -> Tenant:
    """The tenant whose key came with the request, or 401."""
    if creds is None or not creds.credentials:
        raise _unauthorized("give your API key as `Authorization: Bearer <key>`")
    request.app.state.limiter.check(creds.credentials)
    found = tenants.by_key(request.app.state.store, creds.credentials)
    if found is None:
        raise _unauthorized("this API key is not valid")
    return found


def admin(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(admin_token)) -> None:
    """The operator (constant-time comparison with TULPAR_ADMIN_TOKEN), or 401."""
    expected = request.app.state.settings.admin_token.get_secret_value()
    if not expected:
        raise _unauthorized("creating tenants is turned off: the operator has set no TULPAR_ADMIN_TOKEN")
    if creds is None or not creds.credentials:
        raise _unauthorized("give the admin token as `Authorization: Bearer <token>`")
    request.app.state.limiter.check(creds.credentials)
    if not hmac.compare_digest(creds.credentials.encode("utf-8"), expected.encode("utf-8")):
        raise _unauthorized("this admin token is not valid")
