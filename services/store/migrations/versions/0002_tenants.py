"""Tenants, their channels and subscriptions, the subscription change log;
deliveries say whose they are; articles keep their summary and language (all
new articles are stored now, for rule previews).

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Idempotent like the baseline: a database that Store.create_schema()
    # made from these models already has all of it (0001 adopts and stamps
    # such a database, then this revision must find nothing to do).
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "tenant" not in tables:
        _create_tables()
    for table, column in (("delivery", sa.Column("tenant_id", sa.String(40), nullable=True)),
                          ("delivery", sa.Column("subscription_id", sa.String(40), nullable=True)),
                          ("delivery", sa.Column("channel_id", sa.String(40), nullable=True)),
                          ("article", sa.Column("summary", sa.Text(), nullable=True)),
                          ("article", sa.Column("language", sa.String(16), nullable=True))):
        if column.name not in {c["name"] for c in inspector.get_columns(table)}:
            # New nullable columns: a plain ADD COLUMN on both backends, rows kept.
            op.add_column(table, column)
    indexes = {i["name"] for i in inspector.get_indexes("delivery")}
    for column in ("tenant_id", "subscription_id"):
        if f"ix_delivery_{column}" not in indexes:
            op.create_index(f"ix_delivery_{column}", "delivery", [column])


def _create_tables() -> None:
    op.create_table(
        "tenant",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "channel",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("format", sa.String(32), nullable=True),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("confirm_token_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("confirm_token_hash"),
    )
    op.create_index("ix_channel_tenant_id", "channel", ["tenant_id"])
    op.create_table(
        "subscription",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("fx", sa.JSON(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_subscription_tenant_name"),
    )
    op.create_index("ix_subscription_tenant_id", "subscription", ["tenant_id"])
    op.create_table(
        "subscription_channel",
        sa.Column("subscription_id", sa.String(40), nullable=False),
        sa.Column("channel_id", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channel.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscription_id", "channel_id"),
    )
    op.create_index("ix_subscription_channel_channel_id", "subscription_channel", ["channel_id"])
    op.create_table(
        "subscription_change",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(40), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_subscription_change_subscription_id", "subscription_change", ["subscription_id"])


def downgrade() -> None:
    with op.batch_alter_table("article") as batch:
        batch.drop_column("language")
        batch.drop_column("summary")
    op.drop_index("ix_delivery_subscription_id", table_name="delivery")
    op.drop_index("ix_delivery_tenant_id", table_name="delivery")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("channel_id")
        batch.drop_column("subscription_id")
        batch.drop_column("tenant_id")
    for table in ("subscription_change", "subscription_channel", "subscription", "channel", "tenant"):
        op.drop_table(table)
