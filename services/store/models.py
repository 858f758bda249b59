"""Tables. Deliveries double as the outbox: a row is written in the same
transaction that marks its article seen, and Redis only carries its id."""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import (JSON, Boolean, DateTime, Enum, ForeignKey, Index, Integer, String, Text, TypeDecorator,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC time")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


class DeliveryStatus(StrEnum):
    """Where a delivery is: pending -> sending -> sent | retrying -> ... | failed."""

    PENDING = "pending"
    SENDING = "sending"      # claimed by a worker until its lease runs out
    RETRYING = "retrying"    # waiting for next_attempt_at
    SENT = "sent"
    FAILED = "failed"        # for good: a permanent error, or the schedule ran out


class AttemptOutcome(StrEnum):
    """How one attempt ended (the `attempt` table), and what outbox.attempt returns."""

    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    # Only returned, never stored: the claim failed (not due, or another
    # worker holds it), so nothing was tried.
    SKIPPED = "skipped"


# A given-up delivery is `failed` with a last error starting with this; the
# status stays `failed` so existing health checks and counts keep their meaning.
GAVE_UP = "gave up after"


def _str_enum(enum: type[StrEnum], length: int) -> Enum:
    # VARCHAR holding the enum's values, exactly the strings stored before the
    # enums existed: no CHECK constraint and no native type, so existing
    # databases need no migration.
    return Enum(enum, native_enum=False, create_constraint=False, length=length,
                values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


class SourceState(Base):
    """What we remember between polls of one source (conditional GET, health)."""

    __tablename__ = "source_state"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_polled_at: Mapped[datetime | None]
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)


class SeenArticle(Base):
    __tablename__ = "seen_article"
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    article_id: Mapped[str] = mapped_column(String(700), primary_key=True)
    seen_at: Mapped[datetime]


class Delivery(Base):
    """One alert for one (item, subscription, channel). `payload` is the
    rendered message as plain JSON; channels never render."""

    __tablename__ = "delivery"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    item_source: Mapped[str] = mapped_column(String(200))
    item_id: Mapped[str] = mapped_column(String(700))
    subscription: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[DeliveryStatus] = mapped_column(_str_enum(DeliveryStatus, 16),
                                                   default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    enqueued_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set for a tenant's subscriptions (the API's); None for the config
    # file's. `subscription` above keeps the name the alert showed.
    tenant_id: Mapped[str | None] = mapped_column(String(40), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(40), index=True)
    channel_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (Index("ix_delivery_due", "status", "next_attempt_at"),)


class Attempt(Base):
    __tablename__ = "attempt"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id"), index=True)
    at: Mapped[datetime]
    outcome: Mapped[AttemptOutcome] = mapped_column(_str_enum(AttemptOutcome, 16))
    error: Mapped[str | None] = mapped_column(Text)


class StoredArticle(Base):
    """Every new article, kept for TULPAR_RETENTION_DAYS: rule previews run
    over them, and a currency alert links the latest news about a country
    (`countries` is like ",KZ,KG,", or "" when it is about none of ours).
    `stored_at` is when we first saw it."""

    __tablename__ = "article"
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    article_id: Mapped[str] = mapped_column(String(700), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime | None]
    countries: Mapped[str] = mapped_column(String(64))
    stored_at: Mapped[datetime] = mapped_column(index=True)
    summary: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))


class RateObservation(Base):
    """One rate as a publisher gave it, in our pair convention. The rate is
    kept as decimal text: no float rounding between the file and the alert."""

    __tablename__ = "rate_observation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    pair: Mapped[str] = mapped_column(String(7))
    rate: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime]
    fetched_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("source", "pair", "observed_at", name="uq_observation"),
        Index("ix_observation_pair_time", "pair", "observed_at"),
    )


class FxRuleState(Base):
    """Edge-trigger memory of one FX subscription between polls."""

    __tablename__ = "fx_rule_state"
    subscription: Mapped[str] = mapped_column(String(200), primary_key=True)
    armed: Mapped[bool] = mapped_column(default=True)
    last_fired_at: Mapped[datetime | None]
    # The newest observation time already judged: the next poll starts after it.
    evaluated_until: Mapped[datetime | None]


# --- tenants and what they own (the API's; docs/api.md) ---------------------------

class ChannelType(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class Tenant(Base):
    """A subscriber account. Its API key is stored as a SHA-256 hash: keys are
    random 256-bit strings, so a slow password hash would add nothing."""

    __tablename__ = "tenant"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class Channel(Base):
    """Where a tenant's alerts go: an email address (sent to only once its
    confirmation link was followed) or a webhook URL with its own signing
    secret. `target` is the channel module's form: mailto:ADDRESS or the URL.
    The secret is kept as is (we must sign with it); it is shown once."""

    __tablename__ = "channel"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    type: Mapped[ChannelType] = mapped_column(_str_enum(ChannelType, 16))
    target: Mapped[str] = mapped_column(Text)
    format: Mapped[str | None] = mapped_column(String(32))
    secret: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None]
    confirm_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class TenantSubscription(Base):
    """A tenant's subscription: a news query or an FX rule (exactly one of
    the two), sent to its channels (SubscriptionChannel)."""

    __tablename__ = "subscription"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    query: Mapped[str | None] = mapped_column(Text)
    fx: Mapped[dict | None] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_subscription_tenant_name"),)


class SubscriptionChannel(Base):
    __tablename__ = "subscription_channel"
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscription.id", ondelete="CASCADE"),
                                                 primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("channel.id", ondelete="CASCADE"),
                                            primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class SubscriptionChange(Base):
    """An append-only log: one row each time a subscription (or a channel it
    uses) is created, changed, paused or deleted, in the same transaction.
    Workers remember the last `seq` they applied and reload only the
    subscriptions named after it (services/accounts/live.py)."""

    __tablename__ = "subscription_change"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime]
