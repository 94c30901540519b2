"""reconcile clocks: since when each Provisioning workload has been short of nodes and each place has had no
list answer, kept in the store so a restarted controller (or a new leader) continues them

Revision ID: 0014_reconcile_clocks
Revises: 0013_list_indexes
Create Date: 2026-12-01 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0014_reconcile_clocks"
down_revision = "0013_list_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconcile_clocks",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("since", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )


def downgrade() -> None:
    op.drop_table("reconcile_clocks")
