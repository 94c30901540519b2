"""timeline: usage_changes, the fleet's GPUs in use per (provider, region, GPU model, capacity type) as a
step function (one row each time a figure changes), from which contracts are burned down over their term

Revision ID: 0005_timeline
Revises: 0004_queues
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0005_timeline"
down_revision = "0004_queues"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("gpu_model", sa.String(32), nullable=False),
        sa.Column("capacity_type", sa.String(16), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("dollars_per_hour", sa.Float(), nullable=False),
    )
    op.create_index("ix_usage_changes_at", "usage_changes", ["at"])
    op.create_index("ix_usage_changes_scope", "usage_changes", ["provider", "gpu_model"])


def downgrade() -> None:
    op.drop_index("ix_usage_changes_scope", "usage_changes")
    op.drop_index("ix_usage_changes_at", "usage_changes")
    op.drop_table("usage_changes")
