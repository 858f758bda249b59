"""A tenant's channels. A webhook gets its own signing secret (returned once,
at creation). An email address gets a confirmation link, sent through the
outbox like any alert; until it is followed nothing else is sent to it
(the workers skip unconfirmed channels: services/accounts/live.py)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from services import render
from services.accounts import ids
from services.accounts.errors import Invalid, NotFound
from services.delivery import channels as delivery_channels
from services.settings import Settings
from services.store import Store
from services.store.db import NewDelivery, add_deliveries
from services.store.models import Channel, ChannelType, SubscriptionChannel
from services.accounts.subscriptions import log_changes

# Webhook body formats (templates/webhook/<format>.json for news alerts).
FORMATS = {"json": "generic"}
CONFIRM_SUBSCRIPTION = "(email confirmation)"


@dataclass(frozen=True)
class NewChannel:
    channel: Channel
    secret: str | None = None          # a webhook's, shown once
    confirm_delivery: int | None = None  # the outbox row of an email's confirmation link


def target_of(type_: ChannelType, value: str) -> str:
    return f"mailto:{value}" if type_ == ChannelType.EMAIL else value


def create_webhook(store: Store, tenant_id: str, url: str, fmt: str, settings: Settings,
                   now: datetime) -> NewChannel:
    if fmt not in FORMATS:
        raise Invalid(f"unknown format {fmt!r}; known: {', '.join(sorted(FORMATS))}", field="format")
    _check_target(url, settings, "url")
    secret = ids.new_webhook_secret()
    channel = Channel(id=ids.new_id("ch"), tenant_id=tenant_id, type=ChannelType.WEBHOOK, target=url,
                      format=fmt, secret=secret, confirmed_at=now, created_at=now)
    with store.sessions.begin() as s:
        s.add(channel)
    return NewChannel(channel, secret=secret)


def create_email(store: Store, tenant_id: str, address: str, settings: Settings, now: datetime,
                 *, confirmed: bool = False) -> NewChannel:
    """An email channel; unless `confirmed` (the operator's `tulpar apply`),
    its confirmation email is written to the outbox in the same transaction
    (the caller enqueues `confirm_delivery`; the sweeper would anyway)."""
    target = target_of(ChannelType.EMAIL, address.strip() if isinstance(address, str) else address)
    _check_target(target, settings, "address")
    token = ids.new_token()
    channel = Channel(id=ids.new_id("ch"), tenant_id=tenant_id, type=ChannelType.EMAIL, target=target,
                      confirmed_at=now if confirmed else None,
                      confirm_token_hash=None if confirmed else ids.digest(token), created_at=now)
    with store.sessions.begin() as s:
        s.add(channel)
        delivery = None
        if not confirmed:
            s.flush()
            rows = add_deliveries(s, [confirmation(channel, token, settings, now)], now)
            delivery = rows[0].id if rows else None
    return NewChannel(channel, confirm_delivery=delivery)


def confirmation(channel: Channel, token: str, settings: Settings, now: datetime) -> NewDelivery:
    link = f"{settings.public_url.rstrip('/')}/v1/channels/confirm/{token}"
    payload = render.email("confirm", {"link": link, "address": channel.target[len("mailto:"):]},
                           templates_dir=settings.templates_dir)
    return NewDelivery(ids.digest(f"confirm\x1f{channel.id}"), "tulpar", channel.id, CONFIRM_SUBSCRIPTION,
                       channel.target, payload, tenant_id=channel.tenant_id, channel_id=channel.id)


def confirm(store: Store, token: str, now: datetime) -> Channel:
    """Follow a confirmation link: the channel starts receiving alerts with
    the workers' next change check. A used or unknown token is NotFound."""
    with store.sessions.begin() as s:
        channel = s.scalar(select(Channel).where(Channel.confirm_token_hash == ids.digest(token)))
        if channel is None:
            raise NotFound("this confirmation link is unknown or was used already")
        channel.confirmed_at, channel.confirm_token_hash = now, None
        log_changes(s, _subscriptions_using(s, channel.id), now)
    return channel


def get(store: Store, tenant_id: str, channel_id: str) -> Channel:
    with store.sessions() as s:
        channel = s.scalar(select(Channel).where(Channel.id == channel_id, Channel.tenant_id == tenant_id))
    if channel is None:
        raise NotFound(f"no channel {channel_id!r}")
    return channel


def list_(store: Store, tenant_id: str) -> list[Channel]:
    with store.sessions() as s:
        return list(s.scalars(select(Channel).where(Channel.tenant_id == tenant_id)
                              .order_by(Channel.created_at, Channel.id)))


def delete_(store: Store, tenant_id: str, channel_id: str, now: datetime) -> None:
    """Delete a channel; the subscriptions that used it stop sending there
    (with the workers' next change check). Deliveries already written to it
    are given up when their turn comes (services/delivery/outbox.py)."""
    with store.sessions.begin() as s:
        channel = s.scalar(select(Channel).where(Channel.id == channel_id, Channel.tenant_id == tenant_id))
        if channel is None:
            raise NotFound(f"no channel {channel_id!r}")
        using = _subscriptions_using(s, channel_id)
        s.execute(delete(SubscriptionChannel).where(SubscriptionChannel.channel_id == channel_id))
        s.delete(channel)
        log_changes(s, using, now)


def _subscriptions_using(s, channel_id: str) -> list[str]:
    return list(s.scalars(select(SubscriptionChannel.subscription_id)
                          .where(SubscriptionChannel.channel_id == channel_id)))


def _check_target(target: str, settings: Settings, field: str) -> None:
    if not isinstance(target, str) or not target.strip():
        raise Invalid("is required", field=field)
    try:
        delivery_channels.validate_target(target, settings)
    except ValueError as exc:
        raise Invalid(str(exc), field=field) from None
