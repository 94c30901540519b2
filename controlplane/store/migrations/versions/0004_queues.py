"""queues: the queue a workload waits in, its admission, position and any preemption in flight

Revision ID: 0004_queues
Revises: 0003_tokens
Create Date: 2026-11-30 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0004_queues"
down_revision = "0003_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as b:
        b.add_column(sa.Column("queue", sa.String(63), nullable=True))
        b.add_column(sa.Column("flavour", sa.String(63), nullable=True))
        b.add_column(sa.Column("admitted_at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("wait_reason", sa.String(16), nullable=False, server_default=""))
        b.add_column(sa.Column("queue_position", sa.Integer(), nullable=True))
        b.add_column(sa.Column("preempted_for", sa.String(140), nullable=True))
        b.add_column(sa.Column("preempt_requested_at", controlplane.store.coltypes.UTCDateTime(timezone=True),
                               nullable=True))
        b.add_column(sa.Column("preemptions", sa.Integer(), nullable=False, server_default="0"))
        b.create_index("ix_workloads_queue", ["queue"])


def downgrade() -> None:
    with op.batch_alter_table("workloads") as b:
        b.drop_index("ix_workloads_queue")
        for c in ("preemptions", "preempt_requested_at", "preempted_for", "queue_position", "wait_reason",
                  "admitted_at", "flavour", "queue"):
            b.drop_column(c)
