"""recordings: the archive's rows (recordings, their pauses and files), its search documents, and
meetings.record_sessions

The search index itself is the database's: on PostgreSQL ``recording_search.tsv`` (tsvector, 'simple'
configuration) with a GIN index; on SQLite an FTS5 virtual table ``recording_search_fts`` over
``recording_search.document`` that the service creates and rebuilds when it finds it missing (it is not a
table of the models, so it is not created here: the models-match-migrations check would see it, and its
FTS5 shadow tables, as tables to drop). Downgrading drops it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recording_search',
    sa.Column('meeting_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('document', sa.Text(), server_default='', nullable=False),
    sa.Column('tsv', sa.Text().with_variant(postgresql.TSVECTOR(), 'postgresql'), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_recording_search_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('meeting_id', name=op.f('pk_recording_search'))
    )
    with op.batch_alter_table('recording_search', schema=None) as batch_op:
        batch_op.create_index('ix_recording_search_tsv', ['tsv'], unique=False, postgresql_using='gin')

    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.Enum('recording', 'paused', 'closed', 'failed', 'deleted', name='recordingstate', native_enum=False, length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('started_by_id', sa.Integer(), nullable=True),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('duration_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('retention_class', sa.String(length=32), server_default='keep', nullable=False),
    sa.Column('keep_until', sa.DateTime(), nullable=True),
    sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.Column('delete_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('alarm', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['people.id'], name=op.f('fk_recordings_deleted_by_id_people')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_recordings_meeting_id_meetings'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['started_by_id'], ['people.id'], name=op.f('fk_recordings_started_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recordings')),
    sa.UniqueConstraint('key', name='uq_recordings_key')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index('ix_recordings_meeting_id', ['meeting_id'], unique=False)
        batch_op.create_index('ix_recordings_state', ['state'], unique=False)

    op.create_table('recording_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('media', sa.String(length=8), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('office_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('duration_ms', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('sha256', sa.String(length=64), server_default='', nullable=False),
    sa.Column('frames', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('gap_ms', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("kind IN ('track', 'proceedings', 'manifest')", name=op.f('ck_recording_files_kind')),
    sa.CheckConstraint("media IN ('audio', 'video', 'av')", name=op.f('ck_recording_files_media')),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_recording_files_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_recording_files_person_id_people')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_recording_files_recording_id_recordings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_files')),
    sa.UniqueConstraint('recording_id', 'name', name='uq_recording_files_recording_name')
    )
    with op.batch_alter_table('recording_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_files_recording_id'), ['recording_id'], unique=False)

    op.create_table('recording_pauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['by_id'], ['people.id'], name=op.f('fk_recording_pauses_by_id_people')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_recording_pauses_recording_id_recordings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_pauses'))
    )
    with op.batch_alter_table('recording_pauses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_pauses_recording_id'), ['recording_id'], unique=False)

    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_sessions', sa.Boolean(), server_default=sa.true(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_column('record_sessions')

    with op.batch_alter_table('recording_pauses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_pauses_recording_id'))

    op.drop_table('recording_pauses')
    with op.batch_alter_table('recording_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_files_recording_id'))

    op.drop_table('recording_files')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index('ix_recordings_state')
        batch_op.drop_index('ix_recordings_meeting_id')

    op.drop_table('recordings')
    with op.batch_alter_table('recording_search', schema=None) as batch_op:
        batch_op.drop_index('ix_recording_search_tsv', postgresql_using='gin')

    op.drop_table('recording_search')
    if op.get_bind().dialect.name == 'sqlite':
        # The FTS5 index the service builds over recording_search (services/recordings.py).
        op.execute('DROP TABLE IF EXISTS recording_search_fts')
