"""tokens: expiry, last use; the old global ``admin`` role becomes ``cluster-admin``

Revision ID: 0003_tokens
Revises: 0002_hardening
Create Date: 2026-11-30 00:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import controlplane.store.coltypes

revision = "0003_tokens"
down_revision = "0002_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as b:
        b.add_column(sa.Column("expires_at", controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("last_used_at", controlplane.store.coltypes.UTCDateTime(timezone=True),
                               nullable=True))
    # Tokens made before the split were global admins: they keep exactly that power, now by its name.
    op.execute("UPDATE tokens SET role = 'cluster-admin' WHERE role = 'admin'")


def downgrade() -> None:
    op.execute("UPDATE tokens SET role = 'admin' WHERE role = 'cluster-admin'")
    with op.batch_alter_table("tokens") as b:
        b.drop_column("last_used_at")
        b.drop_column("expires_at")
