"""list indexes: a page filtered by state (with or without a team) in id order, and its bounded total,
read an index range instead of sorting every matching row; a team's page and total read the index alone

Revision ID: 0013_list_indexes
Revises: 0012_change_feed
Create Date: 2026-11-30 19:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0013_list_indexes"
down_revision = "0012_change_feed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # (team, id, state): the default filter (not Deleted) is read from the index, not from each row.
    op.create_index("ix_workloads_team_id_state", "workloads", ["team", "id", "state"])
    op.drop_index("ix_workloads_team_id", table_name="workloads")
    op.create_index("ix_workloads_state_id", "workloads", ["state", "id"])
    # (team, state, id) serves whatever (team, state) did, and orders a team's rows of one state by id.
    op.create_index("ix_workloads_team_state_id", "workloads", ["team", "state", "id"])
    op.drop_index("ix_workloads_team_state", table_name="workloads")


def downgrade() -> None:
    op.create_index("ix_workloads_team_state", "workloads", ["team", "state"])
    op.drop_index("ix_workloads_team_state_id", table_name="workloads")
    op.drop_index("ix_workloads_state_id", table_name="workloads")
    op.create_index("ix_workloads_team_id", "workloads", ["team", "id"])
    op.drop_index("ix_workloads_team_id_state", table_name="workloads")
