"""shared work: observations published by the replica holding a provider's observe lease, applied by the
leader (work_leases gains the kinds observe, dispatch, sweep and replica; no schema change there)

Revision ID: 0011_shared_work
Revises: 0010_capacity_estimates
Create Date: 2026-11-30 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0011_shared_work"
down_revision = "0010_capacity_estimates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("nodes", controlplane.store.coltypes.JSONType, nullable=False),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("observed_at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("provider"),
    )


def downgrade() -> None:
    op.drop_table("observations")
