"""What goes in and out of the API, as pydantic models: the OpenAPI document
is generated from them, and FastAPI checks every answer against them (a
field not declared here, such as a webhook's secret after creation, cannot
slip into a response). Inputs forbid unknown fields (422 `unknown field`)."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_nul(value: str) -> str:
    # PostgreSQL refuses NUL in text; say so before the database does.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
# JSON has no NaN or Infinity, but Python's parser takes them: refuse them.
Number = Annotated[float, Field(allow_inf_nan=False)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- tenants ---------------------------------------------------------------------

class TenantIn(Input):
    name: Text = Field(description="lowercase letters, digits, '.', '_' or '-' (1-100)",
                       examples=["acme"])


class TenantCreated(BaseModel):
    id: str
    name: str
    api_key: str = Field(description="shown this once; only its hash is stored")


# --- channels --------------------------------------------------------------------

class WebhookIn(Input):
    type: Literal["webhook"]
    url: Text = Field(description="https URL; loopback, private, link-local and metadata addresses are refused")
    format: Text = Field("json", description="the body format: json")


class EmailIn(Input):
    type: Literal["email"]
    address: Text = Field(description="confirmed by a link sent to it; nothing else is sent before")


ChannelIn = Annotated[Union[WebhookIn, EmailIn], Field(discriminator="type")]


class ChannelOut(BaseModel):
    id: str
    type: Literal["webhook", "email"]
    url: str | None = Field(None, description="a webhook's")
    address: str | None = Field(None, description="an email channel's")
    format: str | None = None
    confirmed: bool
    created_at: str


class ChannelCreated(ChannelOut):
    secret: str | None = Field(None, description="a webhook's signing secret (whsec_...): in this response only")


class ChannelList(BaseModel):
    items: list[ChannelOut]


# --- subscriptions ---------------------------------------------------------------

class FxRuleIn(Input):
    """The keys of an FX rule (docs/fx.md) without its name: a change rule
    (change_pct, window, direction) or a level rule (above or below)."""

    pair: Text = Field(examples=["KZT/USD"])
    change_pct: Number | None = None
    window: Text | None = Field(None, description="'previous' or a duration such as 1d")
    direction: Literal["up", "down", "any"] | None = None
    above: Number | None = None
    below: Number | None = None
    cooldown: Text | None = Field(None, description="a duration such as 1d")


class SubscriptionIn(Input):
    name: Text
    query: Text | None = Field(None, description="a news rule in the query language (docs/rules.md)")
    fx: FxRuleIn | None = Field(None, description="an FX rule instead of a query")
    channels: list[Text] = Field(description="channel ids, 1-20")
    paused: bool = False


class SubscriptionPatch(Input):
    name: Text | None = None
    query: Text | None = None
    fx: FxRuleIn | None = None
    channels: list[Text] | None = None
    paused: bool | None = None


class SubscriptionOut(BaseModel):
    id: str
    name: str
    query: str | None
    fx: dict[str, Any] | None
    channels: list[str]
    paused: bool
    created_at: str
    updated_at: str


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next: str | None = Field(description="pass as ?cursor= for the next page; null at the end")


# --- rule preview ----------------------------------------------------------------

class PreviewIn(Input):
    query: Text
    days: int = Field(30, ge=1, description="look back this many days (at most TULPAR_RETENTION_DAYS)")


class PreviewArticle(BaseModel):
    source: str
    id: str
    title: str
    summary: str
    link: str
    published: str | None
    first_seen: str = Field(description="when tulpar first saw it (the day per_day counts it in)")
    language: str | None


class PreviewMatch(BaseModel):
    article: PreviewArticle
    terms: list[str]


class PreviewOut(BaseModel):
    matches: list[PreviewMatch]
    per_day: dict[str, int] = Field(description="matches per UTC day, e.g. {\"2026-11-01\": 3}")


# --- deliveries ------------------------------------------------------------------

class DeliveryItem(BaseModel):
    source: str
    id: str


class DeliveryOut(BaseModel):
    id: int
    subscription: str | None
    subscription_name: str
    channel: str | None
    target: str = Field(description="the channel's address or URL, secrets masked")
    status: Literal["pending", "sending", "retrying", "sent", "failed"]
    attempts: int
    item: DeliveryItem
    created_at: str
    delivered_at: str | None
    next_attempt_at: str | None
    last_error: str | None


class AttemptOut(BaseModel):
    at: str
    outcome: str
    error: str | None


class DeliveryDetail(DeliveryOut):
    history: list[AttemptOut] = Field(description="each attempt, oldest first")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next: str | None


# --- health ----------------------------------------------------------------------

class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str]
