"""workload names unique per team

Revision ID: 0002_hardening
Revises: 0001
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

from typing import Any

from alembic import op

revision = '0002_hardening'
down_revision = '0001'
branch_labels = None
depends_on = None

# 0001 created the unique constraint on workloads.name without a name: PostgreSQL called it
# workloads_name_key; SQLite keeps it nameless, so the batch copy names it by this convention to drop it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique() -> tuple[str, dict[str, Any]]:
    if op.get_bind().dialect.name == "sqlite":
        return "uq_workloads_name", {"naming_convention": _SQLITE_NAMES, "recreate": "always"}
    return "workloads_name_key", {}


def upgrade() -> None:
    name, kw = _old_unique()
    with op.batch_alter_table('workloads', schema=None, **kw) as batch_op:
        batch_op.drop_constraint(name, type_='unique')
        batch_op.create_unique_constraint('uq_workloads_team_name', ['team', 'name'])
        batch_op.create_index('ix_workloads_name', ['name'], unique=False)


def downgrade() -> None:
    name, kw = _old_unique()
    with op.batch_alter_table('workloads', schema=None, **kw) as batch_op:
        batch_op.drop_index('ix_workloads_name')
        batch_op.drop_constraint('uq_workloads_team_name', type_='unique')
        batch_op.create_unique_constraint(name, ['name'])
