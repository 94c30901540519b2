"""capacity estimates: per-pool caps learned from stock-outs (clouds without a free-capacity API)

Revision ID: 0010_capacity_estimates
Revises: 0009_work_leases
Create Date: 2026-11-30 08:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0010_capacity_estimates"
down_revision = "0009_work_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "capacity_estimates",
        sa.Column("pool", sa.String(length=255), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("stock_outs", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("stocked_out_at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pool"),
    )


def downgrade() -> None:
    op.drop_table("capacity_estimates")
