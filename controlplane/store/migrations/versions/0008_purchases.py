"""purchases: proposals to buy capacity (Capacity Blocks) on policy, from the offering to the block bought

Revision ID: 0008_purchases
Revises: 0007_dispatch
Create Date: 2026-11-30 07:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0008_purchases"
down_revision = "0007_dispatch"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "purchases",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("instance_type", sa.String(length=64), nullable=False),
        sa.Column("ultraserver_type", sa.String(length=64), nullable=False),
        sa.Column("ultraserver_count", sa.Integer(), nullable=False),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("offering_id", sa.String(length=128), nullable=False),
        _ts("starts_at", False),
        _ts("ends_at", False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("price_per_gpu_hour", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("demand", controlplane.store.coltypes.JSONType, nullable=False),
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        _ts("decided_at"),
        _ts("bought_at"),
        _ts("created_at", False),
        _ts("updated_at", False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token", name="uq_purchases_token"),
    )
    op.create_index("ix_purchases_state", "purchases", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_purchases_state", table_name="purchases")
    op.drop_table("purchases")
