"""Baseline: the tables, indexes and constraints `Store.create_schema()` made
before migrations existed.

Written out, not Base.metadata.create_all: the models will move on and this
revision must keep creating what it always created. Types are the plain ones
the models' types compile to (UTCDateTime is a DATETIME / TIMESTAMP, the
status enums are VARCHAR(16) without a CHECK).

Idempotent on purpose: deployed databases were made by create_schema(), and
by older releases that had fewer tables (article, rate_observation and
fx_rule_state came later). A table that exists is kept as it is, rows and
all; a missing one is created; then Alembic stamps 0001. That is how
`tulpar db upgrade` adopts them.

Revision ID: 0001
Revises: (none)
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[sa.Table]:
    """Each table with its indexes, parents before children (attempt -> delivery)."""
    meta = sa.MetaData()
    source_state = sa.Table(
        "source_state", meta,
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("consecutive_errors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    seen_article = sa.Table(
        "seen_article", meta,
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("article_id", sa.String(700), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "article_id"),
    )
    delivery = sa.Table(
        "delivery", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("item_source", sa.String(200), nullable=False),
        sa.Column("item_id", sa.String(700), nullable=False),
        sa.Column("subscription", sa.String(200), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    attempt = sa.Table(
        "attempt", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    article = sa.Table(
        "article", meta,
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("article_id", sa.String(700), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=False),
        sa.Column("published", sa.DateTime(), nullable=True),
        sa.Column("countries", sa.String(64), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "article_id"),
    )
    rate_observation = sa.Table(
        "rate_observation", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("pair", sa.String(7), nullable=False),
        sa.Column("rate", sa.String(64), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "pair", "observed_at", name="uq_observation"),
    )
    fx_rule_state = sa.Table(
        "fx_rule_state", meta,
        sa.Column("subscription", sa.String(200), nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("last_fired_at", sa.DateTime(), nullable=True),
        sa.Column("evaluated_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("subscription"),
    )
    # Bound to their tables: Table.create() creates them with it.
    sa.Index("ix_delivery_due", delivery.c.status, delivery.c.next_attempt_at)
    sa.Index("ix_attempt_delivery_id", attempt.c.delivery_id)
    sa.Index("ix_article_stored_at", article.c.stored_at)
    sa.Index("ix_observation_pair_time", rate_observation.c.pair, rate_observation.c.observed_at)
    return [source_state, seen_article, delivery, attempt, article, rate_observation, fx_rule_state]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in _tables():
        if table.name not in existing:  # one that exists was made by create_schema(): kept as it is
            table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(_tables()):
        table.drop(bind, checkfirst=True)
