"""provincial_nodes: the offices' edge nodes, each with the SHA-256 of its credential (never the credential)

A node's name is unique within its office among the nodes not revoked (a partial unique index on both
backends), so a revoked node's replacement can take its name.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ACTIVE = sa.text('revoked_at IS NULL')


def upgrade() -> None:
    op.create_table('provincial_nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('credential_prefix', sa.String(length=16), nullable=False),
    sa.Column('credential_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['people.id'], name=op.f('fk_provincial_nodes_created_by_id_people')),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_provincial_nodes_office_id_offices'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['people.id'], name=op.f('fk_provincial_nodes_revoked_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provincial_nodes')),
    sa.UniqueConstraint('credential_hash', name='uq_provincial_nodes_credential_hash'),
    sa.UniqueConstraint('credential_prefix', name='uq_provincial_nodes_credential_prefix')
    )
    with op.batch_alter_table('provincial_nodes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provincial_nodes_office_id'), ['office_id'], unique=False)
        batch_op.create_index('uq_provincial_nodes_office_active_name', ['office_id', 'name'], unique=True,
                              sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table('provincial_nodes', schema=None) as batch_op:
        batch_op.drop_index('uq_provincial_nodes_office_active_name')
        batch_op.drop_index(batch_op.f('ix_provincial_nodes_office_id'))

    op.drop_table('provincial_nodes')
