"""dispatch: the run of a workload (restarts, dispatched/finished/released times, exit code, reason) and
the kept tails of its pods' logs

Revision ID: 0007_dispatch
Revises: 0006_api_indexes
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0007_dispatch"
down_revision = "0006_api_indexes"
branch_labels = None
depends_on = None


def _ts(name: str) -> sa.Column[Any]:
    return sa.Column(name, controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("workloads") as b:
        b.add_column(sa.Column("restarts", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(_ts("dispatched_at"))
        b.add_column(_ts("finished_at"))
        b.add_column(_ts("released_at"))
        b.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
        b.add_column(sa.Column("reason", sa.String(length=64), nullable=False, server_default=""))
    op.create_table(
        "run_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workload_id", sa.Integer(), nullable=False),
        sa.Column("incarnation", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("pod", sa.String(length=253), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workload_id"], ["workloads.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_logs_workload_id", "run_logs", ["workload_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_run_logs_workload_id", table_name="run_logs")
    op.drop_table("run_logs")
    with op.batch_alter_table("workloads") as b:
        for c in ("reason", "exit_code", "released_at", "finished_at", "dispatched_at", "restarts"):
            b.drop_column(c)
