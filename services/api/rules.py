"""POST /v1/rules/preview: what a query would have matched among the
articles stored in the last N days, with the matched terms and a count per
day, before it is saved as a subscription."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from services.accounts import subscriptions
from services.api import context
from services.api.errors import responses
from services.api.schemas import PreviewIn, PreviewOut
from services.news import preview as preview_engine

router = APIRouter(prefix="/v1/rules", tags=["rules"])


@router.post("/preview", response_model=PreviewOut, operation_id="previewRule",
             responses=responses(400, 401, 413, 422, 429),
             summary="Preview a query over the stored articles of the last `days` days")
def preview(body: PreviewIn, ctx: context.Context = Depends(context.of_tenant)):
    query = subscriptions.check_query(body.query)  # the same 422 (and column) as a subscription's
    days = preview_engine.check_days(body.days, ctx.settings.retention_days)
    return preview_engine.preview(ctx.store, query, days, ctx.now, ctx.settings)
