"""/v1/deliveries: what was sent where for a tenant, how it went (secrets
in targets and errors masked), and replay."""
from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query

from services.accounts import deliveries, subscriptions
from services.api import context
from services.api.errors import responses
from services.api.schemas import DeliveryDetail, DeliveryOut, DeliveryPage
from services.redact import redact_text

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
AUTHED = (401, 429)
MAX_PAGE = 200
# delivery.id is an INTEGER column: 32 bits on PostgreSQL, where a larger
# number would fail the query (found by schemathesis) instead of not matching.
MAX_ID = 2**31 - 1
DeliveryId = Path(ge=1, le=MAX_ID, description="a delivery's id")


@router.get("", response_model=DeliveryPage, operation_id="listDeliveries", responses=responses(*AUTHED, 404, 422),
            summary="A page of your deliveries, newest first")
def page(subscription: str | None = Query(None, max_length=64, description="only this subscription's"),
         cursor: str | None = Query(None, max_length=200, description="`next` of the previous page"),
         limit: int = Query(deliveries.PAGE, ge=1, description=f"page size (at most {MAX_PAGE})"),
         ctx: context.Context = Depends(context.of_tenant)):
    if subscription is not None:
        subscription = context.path_id(subscription, "subscription")
    rows, after = deliveries.page(ctx.store, ctx.tenant_id, subscription, cursor,
                                  min(limit, MAX_PAGE))
    if subscription is not None and not rows and cursor is None:
        # Nothing sent for it: a subscription of this tenant (404 otherwise, like
        # every id that is not the tenant's). A deleted one's history still shows.
        subscriptions.get(ctx.store, ctx.tenant_id, subscription)
    return {"items": [deliveries.to_json(r) for r in rows], "next": after}


@router.get("/{delivery_id}", response_model=DeliveryDetail, operation_id="getDelivery", responses=responses(*AUTHED, 404, 422),
            summary="One delivery with each of its attempts")
def get(delivery_id: int = DeliveryId, ctx: context.Context = Depends(context.of_tenant)):
    row = deliveries.get(ctx.store, ctx.tenant_id, delivery_id)
    history = [{"at": a.at.isoformat(), "outcome": str(a.outcome), "error": redact_text(a.error) if a.error else None}
               for a in deliveries.attempts(ctx.store, ctx.tenant_id, delivery_id)]
    return {**deliveries.to_json(row), "history": history}


@router.post("/{delivery_id}/replay", status_code=202, response_model=DeliveryOut, operation_id="replayDelivery",
             responses=responses(*AUTHED, 404, 422), summary="Send a delivery again")
def replay(tasks: BackgroundTasks, delivery_id: int = DeliveryId, ctx: context.Context = Depends(context.of_tenant)):
    row = deliveries.replay(ctx.store, ctx.tenant_id, delivery_id, ctx.now)
    tasks.add_task(ctx.queue.deliver, [row.id])
    return deliveries.to_json(row)
