"""work leases: per-stack leases any replica may claim (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL),
and failed pools shared with the placer

Revision ID: 0009_work_leases
Revises: 0007_dispatch
Create Date: 2026-11-30 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0009_work_leases"
down_revision = "0008_purchases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_leases",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("expires_at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )


def downgrade() -> None:
    op.drop_table("work_leases")
