"""/v1/subscriptions: a tenant's news rules (a query) and FX rules, each sent
to some of its channels. A change reaches the workers through the change
log the account functions write (no restart)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from services.accounts import subscriptions
from services.api import context
from services.api.errors import links, responses
from services.api.schemas import SubscriptionIn, SubscriptionOut, SubscriptionPage, SubscriptionPatch

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
AUTHED = (401, 429)
MAX_PAGE = 200


def fx_of(rule) -> dict | None:
    return None if rule is None else rule.model_dump(exclude_none=True)


@router.post("", status_code=201, response_model=SubscriptionOut, operation_id="createSubscription",
             responses=links(responses(400, *AUTHED, 409, 413, 422), "subscription_id",
                             "getSubscription", "updateSubscription", "deleteSubscription"),
             summary="Create a subscription: a news query or an FX rule")
def create(body: SubscriptionIn, ctx: context.Context = Depends(context.of_tenant)):
    view = subscriptions.create(ctx.store, ctx.tenant_id, body.name, body.channels, ctx.now,
                                query=body.query, fx=fx_of(body.fx), paused=body.paused)
    return view.to_json()


@router.get("", response_model=SubscriptionPage, operation_id="listSubscriptions", responses=responses(*AUTHED, 422),
            summary="A page of your subscriptions, in id order")
def page(cursor: str | None = Query(None, max_length=200, description="`next` of the previous page"),
         limit: int = Query(subscriptions.PAGE, ge=1, description=f"page size (at most {MAX_PAGE})"),
         ctx: context.Context = Depends(context.of_tenant)):
    views, after = subscriptions.page(ctx.store, ctx.tenant_id, cursor, min(limit, MAX_PAGE))
    return {"items": [v.to_json() for v in views], "next": after}


@router.get("/{subscription_id}", response_model=SubscriptionOut, operation_id="getSubscription", responses=responses(*AUTHED, 404),
            summary="One subscription")
def get(subscription_id: str, ctx: context.Context = Depends(context.of_tenant)):
    return subscriptions.get(ctx.store, ctx.tenant_id, context.path_id(subscription_id, "subscription")).to_json()


@router.patch("/{subscription_id}", response_model=SubscriptionOut, operation_id="updateSubscription",
              responses=responses(400, *AUTHED, 404, 409, 413, 422),
              summary="Change a subscription's query (or fx rule), channels, paused or name")
def update(subscription_id: str, body: SubscriptionPatch, ctx: context.Context = Depends(context.of_tenant)):
    view = subscriptions.update(ctx.store, ctx.tenant_id, context.path_id(subscription_id, "subscription"),
                                ctx.now, query=body.query, channel_ids=body.channels, paused=body.paused,
                                name=body.name, fx=fx_of(body.fx))
    return view.to_json()


@router.delete("/{subscription_id}", status_code=204, operation_id="deleteSubscription", response_class=Response,
               responses=responses(*AUTHED, 404), summary="Delete a subscription")
def delete(subscription_id: str, ctx: context.Context = Depends(context.of_tenant)):
    subscriptions.delete_(ctx.store, ctx.tenant_id, context.path_id(subscription_id, "subscription"), ctx.now)
    return Response(status_code=204)
