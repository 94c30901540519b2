"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 09:45:56.494880
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import controlplane.store.coltypes

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=128), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_team'), ['team'], unique=False)
        batch_op.create_index('ix_audit_subject', ['kind', 'subject'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('expires_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('renewed_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('policies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('updated_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('stacks',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('spec_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('applied_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('teams',
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('created_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('workloads',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('observed_generation', sa.Integer(), nullable=False),
    sa.Column('placement', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('explanation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('placed_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('running_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lock_token', sa.String(length=64), nullable=True),
    sa.Column('lock_expires_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.create_index('ix_workloads_state_priority', ['state', 'priority'], unique=False)
        batch_op.create_index(batch_op.f('ix_workloads_team'), ['team'], unique=False)

    op.create_table('assignments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('workload_id', sa.Integer(), nullable=False),
    sa.Column('pool', sa.String(length=63), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('instance_type', sa.String(length=64), nullable=False),
    sa.Column('nodes', sa.Integer(), nullable=False),
    sa.Column('gpus', sa.Integer(), nullable=False),
    sa.Column('gpu_model', sa.String(length=32), nullable=False),
    sa.Column('capacity_type', sa.String(length=16), nullable=False),
    sa.Column('reservation', sa.String(length=128), nullable=False),
    sa.Column('price_per_hour', sa.Double(), nullable=False),
    sa.Column('replica_group', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['workload_id'], ['workloads.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignments_provider'), ['provider'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_workload_id'), ['workload_id'], unique=False)

    op.create_table('tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=128), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('created_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', controlplane.store.coltypes.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['team'], ['teams.name'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tokens_team'), ['team'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tokens_team'))

    op.drop_table('tokens')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignments_workload_id'))
        batch_op.drop_index(batch_op.f('ix_assignments_provider'))

    op.drop_table('assignments')
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workloads_team'))
        batch_op.drop_index('ix_workloads_state_priority')

    op.drop_table('workloads')
    op.drop_table('teams')
    op.drop_table('stacks')
    op.drop_table('policies')
    op.drop_table('leases')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_subject')
        batch_op.drop_index(batch_op.f('ix_audit_events_team'))
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')

