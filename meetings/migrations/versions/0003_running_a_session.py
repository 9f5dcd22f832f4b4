"""schedule, agenda documents and positions, the live record, decisions, votes and minutes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Approved minutes are locked at the database level too: triggers refuse UPDATE and DELETE of a row
whose state is 'approved' (their SHA-256 is also in the audit trail).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('calendar_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_calendar_feeds_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_feeds')),
    sa.UniqueConstraint('token_sha256', name=op.f('uq_calendar_feeds_token_sha256'))
    )
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_feeds_person_id'), ['person_id'], unique=False)

    op.create_table('meeting_series',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.Enum('cabinet_session', 'briefing', name='meetingkind', native_enum=False, length=32), nullable=False),
    sa.Column('host_office_id', sa.Integer(), nullable=False),
    sa.Column('weekday', sa.Integer(), nullable=False),
    sa.Column('local_time', sa.Time(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('duration_minutes BETWEEN 1 AND 1440', name=op.f('ck_meeting_series_duration_range')),
    sa.CheckConstraint('weekday BETWEEN 0 AND 6', name=op.f('ck_meeting_series_weekday_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['people.id'], name=op.f('fk_meeting_series_created_by_id_people')),
    sa.ForeignKeyConstraint(['host_office_id'], ['offices.id'], name=op.f('fk_meeting_series_host_office_id_offices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_series'))
    )
    with op.batch_alter_table('meeting_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_series_host_office_id'), ['host_office_id'], unique=False)

    op.create_table('series_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('series_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('(office_id IS NULL) <> (person_id IS NULL)', name=op.f('ck_series_invitations_office_xor_person')),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_series_invitations_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_series_invitations_person_id_people')),
    sa.ForeignKeyConstraint(['series_id'], ['meeting_series.id'], name=op.f('fk_series_invitations_series_id_meeting_series'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_series_invitations')),
    sa.UniqueConstraint('series_id', 'office_id', name='uq_series_invitations_series_office'),
    sa.UniqueConstraint('series_id', 'person_id', name='uq_series_invitations_series_person')
    )
    with op.batch_alter_table('series_invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_series_invitations_series_id'), ['series_id'], unique=False)

    op.create_table('attendance_intervals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('client', sa.String(length=16), nullable=False),
    sa.Column('joined_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('left_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=16), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_attendance_intervals_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_attendance_intervals_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_attendance_intervals_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance_intervals'))
    )
    with op.batch_alter_table('attendance_intervals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_intervals_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_intervals_person_id'), ['person_id'], unique=False)

    op.create_table('excused_absences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('entered_by_id', sa.Integer(), nullable=False),
    sa.Column('entered_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('(office_id IS NULL) <> (person_id IS NULL)', name=op.f('ck_excused_absences_office_xor_person')),
    sa.ForeignKeyConstraint(['entered_by_id'], ['people.id'], name=op.f('fk_excused_absences_entered_by_id_people')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_excused_absences_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_excused_absences_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_excused_absences_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_excused_absences')),
    sa.UniqueConstraint('meeting_id', 'office_id', name='uq_excused_absences_meeting_office'),
    sa.UniqueConstraint('meeting_id', 'person_id', name='uq_excused_absences_meeting_person')
    )
    with op.batch_alter_table('excused_absences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_excused_absences_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('minutes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('draft', 'approved', name='minutesstate', native_enum=False, length=32), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('drafted_at', sa.DateTime(), nullable=False),
    sa.Column('edited_by_id', sa.Integer(), nullable=True),
    sa.Column('edited_at', sa.DateTime(), nullable=True),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('sha256', sa.String(length=64), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['people.id'], name=op.f('fk_minutes_approved_by_id_people')),
    sa.ForeignKeyConstraint(['edited_by_id'], ['people.id'], name=op.f('fk_minutes_edited_by_id_people')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_minutes_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_minutes')),
    sa.UniqueConstraint('meeting_id', name='uq_minutes_meeting')
    )
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_notices_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_notices_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_person_id'), ['person_id'], unique=False)

    op.create_table('roll_calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('started_by_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_roll_calls_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['started_by_id'], ['people.id'], name=op.f('fk_roll_calls_started_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roll_calls'))
    )
    with op.batch_alter_table('roll_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roll_calls_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('agenda_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_agenda_documents_item_id_agenda_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['people.id'], name=op.f('fk_agenda_documents_uploaded_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agenda_documents'))
    )
    with op.batch_alter_table('agenda_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agenda_documents_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agenda_documents_sha256'), ['sha256'], unique=False)

    op.create_table('floor_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('granted_by_id', sa.Integer(), nullable=True),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.Column('limit_seconds', sa.Integer(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_reason', sa.String(length=16), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['granted_by_id'], ['people.id'], name=op.f('fk_floor_grants_granted_by_id_people')),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_floor_grants_item_id_agenda_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_floor_grants_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_floor_grants_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_floor_grants_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_floor_grants'))
    )
    with op.batch_alter_table('floor_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_floor_grants_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('stance', sa.Enum('no_objection', 'wish_to_speak', 'objection', name='stance', native_enum=False, length=32), nullable=False),
    sa.Column('comment', sa.Text(), server_default='', nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_positions_item_id_agenda_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_positions_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_positions_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions')),
    sa.UniqueConstraint('item_id', 'office_id', name='uq_positions_item_office')
    )
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_positions_item_id'), ['item_id'], unique=False)

    op.create_table('roll_call_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('roll_call_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('responded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_roll_call_responses_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_roll_call_responses_person_id_people')),
    sa.ForeignKeyConstraint(['roll_call_id'], ['roll_calls.id'], name=op.f('fk_roll_call_responses_roll_call_id_roll_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roll_call_responses')),
    sa.UniqueConstraint('roll_call_id', 'office_id', name='uq_roll_call_responses_call_office')
    )
    with op.batch_alter_table('roll_call_responses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_roll_call_responses_roll_call_id'), ['roll_call_id'], unique=False)

    op.create_table('votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('sites_present', sa.Integer(), nullable=False),
    sa.Column('sites_invited', sa.Integer(), nullable=False),
    sa.Column('quorum_required', sa.Integer(), nullable=False),
    sa.Column('quorum_met', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_votes_item_id_agenda_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_votes_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['opened_by_id'], ['people.id'], name=op.f('fk_votes_opened_by_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_votes'))
    )
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_votes_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('ballots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vote_id', sa.Integer(), nullable=False),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('choice', sa.Enum('yes', 'no', 'abstain', name='choice', native_enum=False, length=32), nullable=False),
    sa.Column('cast_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['office_id'], ['offices.id'], name=op.f('fk_ballots_office_id_offices')),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_ballots_person_id_people')),
    sa.ForeignKeyConstraint(['vote_id'], ['votes.id'], name=op.f('fk_ballots_vote_id_votes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballots')),
    sa.UniqueConstraint('vote_id', 'office_id', name='uq_ballots_vote_office')
    )
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ballots_vote_id'), ['vote_id'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Enum('adopted', 'adopted_with_amendments', 'deferred', 'rejected', name='outcome', native_enum=False, length=32), nullable=False),
    sa.Column('text', sa.Text(), server_default='', nullable=False),
    sa.Column('en_bloc', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('vote_id', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['agenda_items.id'], name=op.f('fk_decisions_item_id_agenda_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_decisions_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['people.id'], name=op.f('fk_decisions_recorded_by_id_people')),
    sa.ForeignKeyConstraint(['vote_id'], ['votes.id'], name=op.f('fk_decisions_vote_id_votes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decisions')),
    sa.UniqueConstraint('item_id', name='uq_decisions_item')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_meeting_id'), ['meeting_id'], unique=False)

    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('ended_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('occurrence_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('description', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('sequence', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('quorum_percent', sa.Integer(), server_default='50', nullable=False))
        batch_op.add_column(sa.Column('grace_seconds', sa.Integer(), server_default='60', nullable=False))
        batch_op.add_column(sa.Column('positions_deadline', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_meetings_series_id'), ['series_id'], unique=False)
        batch_op.create_unique_constraint('uq_meetings_series_occurrence', ['series_id', 'occurrence_date'])
        batch_op.create_foreign_key(batch_op.f('fk_meetings_series_id_meeting_series'), 'meeting_series', ['series_id'], ['id'], ondelete='SET NULL')

    _create_minutes_lock()


LOCKED_MESSAGE = "approved minutes are locked"


def _create_minutes_lock() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER minutes_locked_no_{verb.lower()} BEFORE {verb} ON minutes "
                f"WHEN OLD.state = 'approved' BEGIN SELECT RAISE(ABORT, '{LOCKED_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION minutes_locked() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF OLD.state = 'approved' THEN RAISE EXCEPTION '{LOCKED_MESSAGE}'; END IF; "
            "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER minutes_locked BEFORE UPDATE OR DELETE ON minutes "
            "FOR EACH ROW EXECUTE FUNCTION minutes_locked()"
        )


def _drop_minutes_lock() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS minutes_locked_no_update")
        op.execute("DROP TRIGGER IF EXISTS minutes_locked_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS minutes_locked ON minutes")
        op.execute("DROP FUNCTION IF EXISTS minutes_locked()")



def downgrade() -> None:
    _drop_minutes_lock()
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_meetings_series_id_meeting_series'), type_='foreignkey')
        batch_op.drop_constraint('uq_meetings_series_occurrence', type_='unique')
        batch_op.drop_index(batch_op.f('ix_meetings_series_id'))
        batch_op.drop_column('updated_at')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('opened_at')
        batch_op.drop_column('positions_deadline')
        batch_op.drop_column('grace_seconds')
        batch_op.drop_column('quorum_percent')
        batch_op.drop_column('sequence')
        batch_op.drop_column('description')
        batch_op.drop_column('occurrence_date')
        batch_op.drop_column('series_id')

    with op.batch_alter_table('agenda_items', schema=None) as batch_op:
        batch_op.drop_column('ended_at')
        batch_op.drop_column('started_at')

    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_meeting_id'))

    op.drop_table('decisions')
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ballots_vote_id'))

    op.drop_table('ballots')
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_votes_meeting_id'))

    op.drop_table('votes')
    with op.batch_alter_table('roll_call_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roll_call_responses_roll_call_id'))

    op.drop_table('roll_call_responses')
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_positions_item_id'))

    op.drop_table('positions')
    with op.batch_alter_table('floor_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_floor_grants_meeting_id'))

    op.drop_table('floor_grants')
    with op.batch_alter_table('agenda_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agenda_documents_sha256'))
        batch_op.drop_index(batch_op.f('ix_agenda_documents_item_id'))

    op.drop_table('agenda_documents')
    with op.batch_alter_table('roll_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_roll_calls_meeting_id'))

    op.drop_table('roll_calls')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_person_id'))

    op.drop_table('notices')
    op.drop_table('minutes')
    with op.batch_alter_table('excused_absences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_excused_absences_meeting_id'))

    op.drop_table('excused_absences')
    with op.batch_alter_table('attendance_intervals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_intervals_person_id'))
        batch_op.drop_index(batch_op.f('ix_attendance_intervals_meeting_id'))

    op.drop_table('attendance_intervals')
    with op.batch_alter_table('series_invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_series_invitations_series_id'))

    op.drop_table('series_invitations')
    with op.batch_alter_table('meeting_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_series_host_office_id'))

    op.drop_table('meeting_series')
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_feeds_person_id'))

    op.drop_table('calendar_feeds')
