"""/v1/channels: where a tenant's alerts go. A webhook's signing secret is
in the creation answer only; an email address is confirmed by the link
emailed to it (GET /v1/channels/confirm/{token}, no key: the link is the proof)."""
from __future__ import annotations

import html

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from services.accounts import channels
from services.accounts.errors import NotFound
from services.api import context
from services.api.errors import body as error_body, links, responses
from services.api.schemas import ChannelCreated, ChannelIn, ChannelList, ChannelOut, WebhookIn
from services.store.models import Channel, ChannelType

router = APIRouter(prefix="/v1/channels", tags=["channels"])
AUTHED = (401, 429)


def to_json(c: Channel) -> dict:
    email = c.type == ChannelType.EMAIL
    return {"id": c.id, "type": str(c.type), "url": None if email else c.target,
            "address": c.target.removeprefix("mailto:") if email else None,
            "format": c.format, "confirmed": c.confirmed_at is not None, "created_at": c.created_at.isoformat()}


@router.post("", status_code=201, response_model=ChannelCreated, operation_id="createChannel",
             responses=links(responses(400, *AUTHED, 413, 422), "channel_id", "getChannel", "deleteChannel"),
             summary="Create a webhook or email channel")
def create(body: ChannelIn, tasks: BackgroundTasks, ctx: context.Context = Depends(context.of_tenant)):
    if isinstance(body, WebhookIn):
        made = channels.create_webhook(ctx.store, ctx.tenant_id, body.url, body.format, ctx.settings, ctx.now)
    else:
        made = channels.create_email(ctx.store, ctx.tenant_id, body.address, ctx.settings, ctx.now)
        if made.confirm_delivery is not None:
            # After the answer is sent: a slow or dead Redis does not hold it up.
            tasks.add_task(ctx.queue.deliver, [made.confirm_delivery])
    return {**to_json(made.channel), "secret": made.secret}


@router.get("", response_model=ChannelList, operation_id="listChannels", responses=responses(*AUTHED), summary="List your channels")
def list_(ctx: context.Context = Depends(context.of_tenant)):
    return {"items": [to_json(c) for c in channels.list_(ctx.store, ctx.tenant_id)]}


CONFIRMED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tulpar: address confirmed</title></head>
<body><h1>Address confirmed</h1><p>{address} will now receive the alerts of the subscriptions that name it.</p></body></html>
"""
UNKNOWN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tulpar: link not valid</title></head>
<body><h1>This link is not valid</h1><p>It is unknown, or the address was confirmed with it already.</p></body></html>
"""


@router.get("/confirm/{token}", response_class=HTMLResponse, operation_id="confirmChannel",
            responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "The address is confirmed"},
                       404: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
                                         "text/html": {"schema": {"type": "string"}}},
                             "description": "Unknown or used link (HTML when the client accepts it, else the error body)"},
                       **responses(422)},
            summary="Follow an email confirmation link (no key)")
def confirm(token: str, request: Request, ctx: context.Context = Depends(context.public)):
    try:
        if len(token) > 200 or "\x00" in token:
            raise NotFound("this confirmation link is unknown or was used already")
        channel = channels.confirm(ctx.store, token, ctx.now)
    except NotFound as exc:
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(UNKNOWN, status_code=404)
        return JSONResponse(error_body(exc.code, exc.message), status_code=404)
    return HTMLResponse(CONFIRMED.format(address=html.escape(channel.target.removeprefix("mailto:"))))


@router.get("/{channel_id}", response_model=ChannelOut, operation_id="getChannel", responses=responses(*AUTHED, 404),
            summary="One channel (never its secret)")
def get(channel_id: str, ctx: context.Context = Depends(context.of_tenant)):
    return to_json(channels.get(ctx.store, ctx.tenant_id, context.path_id(channel_id, "channel")))


@router.delete("/{channel_id}", status_code=204, operation_id="deleteChannel", response_class=Response, responses=responses(*AUTHED, 404),
               summary="Delete a channel; subscriptions stop sending to it")
def delete(channel_id: str, ctx: context.Context = Depends(context.of_tenant)):
    channels.delete_(ctx.store, ctx.tenant_id, context.path_id(channel_id, "channel"), ctx.now)
    return Response(status_code=204)
