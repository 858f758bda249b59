"""POST /v1/tenants: the operator creates a tenant (admin token); its API key is in this answer only."""
from __future__ import annotations

import logging

from fastapi import APIRouter, Depends

from services.accounts import tenants
from services.api import auth, context
from services.api.errors import responses
from services.api.schemas import TenantCreated, TenantIn

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", status_code=201, operation_id="createTenant", response_model=TenantCreated, dependencies=[Depends(auth.admin)],
             responses=responses(400, 401, 409, 413, 422, 429),
             summary="Create a tenant (admin token); the API key is shown once")
def create(body: TenantIn, ctx: context.Context = Depends(context.public)):
    made = tenants.create(ctx.store, body.name, ctx.now)
    log.info("tenant %s (%s) created", made.tenant.id, made.tenant.name)
    return {"id": made.tenant.id, "name": made.tenant.name, "api_key": made.api_key}
