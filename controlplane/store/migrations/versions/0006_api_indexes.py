"""api indexes: pages in id order per team and per audit subject are range scans; page totals from an index

Revision ID: 0006_api_indexes
Revises: 0005_timeline
Create Date: 2026-11-30 04:40:00

Query plans on PostgreSQL showed an index scan on ``team`` followed by a sort of all the team's rows for
every page of ``GET /v1/workloads`` and of the audit streams (SQLite's single-column indexes carry the
rowid, PostgreSQL's do not). The composite indexes end in ``id``; they supersede the single-column ones.
"""

from __future__ import annotations

from alembic import op

revision = "0006_api_indexes"
down_revision = "0005_timeline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_workloads_team_id", "workloads", ["team", "id"])
    op.create_index("ix_workloads_team_state", "workloads", ["team", "state"])
    op.drop_index("ix_workloads_team", table_name="workloads")
    op.create_index("ix_audit_subject_id", "audit_events", ["kind", "subject", "id"])
    op.create_index("ix_audit_events_team_id", "audit_events", ["team", "id"])
    op.drop_index("ix_audit_subject", table_name="audit_events")
    op.drop_index("ix_audit_events_team", table_name="audit_events")


def downgrade() -> None:
    op.create_index("ix_audit_events_team", "audit_events", ["team"])
    op.create_index("ix_audit_subject", "audit_events", ["kind", "subject"])
    op.drop_index("ix_audit_events_team_id", table_name="audit_events")
    op.drop_index("ix_audit_subject_id", table_name="audit_events")
    op.create_index("ix_workloads_team", "workloads", ["team"])
    op.drop_index("ix_workloads_team_state", table_name="workloads")
    op.drop_index("ix_workloads_team_id", table_name="workloads")
