"""recording_gaps: where a site's tracks are missing from a recording (its node's link was cut), and the
node's uploaded recording that fills the interval

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recording_gaps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('filled_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['filled_by_id'], ['recordings.id'], name=op.f('fk_recording_gaps_filled_by_id_recordings')),
    sa.ForeignKeyConstraint(['node_id'], ['provincial_nodes.id'], name=op.f('fk_recording_gaps_node_id_provincial_nodes')),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_recording_gaps_office_id_offices')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_recording_gaps_recording_id_recordings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_gaps'))
    )
    with op.batch_alter_table('recording_gaps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_gaps_node_id'), ['node_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_gaps_recording_id'), ['recording_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recording_gaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_gaps_recording_id'))
        batch_op.drop_index(batch_op.f('ix_recording_gaps_node_id'))

    op.drop_table('recording_gaps')
