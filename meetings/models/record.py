"""The live record of a session: who held the floor, who was connected, roll calls."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from meetings.models.offices import Office
    from meetings.models.people import Person


class FloorGrant(Base):
    """The chair gave a participant the floor (only then is their audio forwarded)."""

    __tablename__ = "floor_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"), nullable=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    limit_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: revoked | expired | yielded | left | closed
    end_reason: Mapped[str] = mapped_column(String(16), default="", server_default="")

    person: Mapped[Person] = relationship(foreign_keys=[person_id], lazy="raise")
    office: Mapped[Office] = relationship(foreign_keys=[office_id], lazy="raise")


class AttendanceInterval(Base):
    """One connection of a person to a session. ``last_seen_at`` is refreshed while connected, so a
    server crash loses at most one refresh period; ``left_at`` is None while the connection is open."""

    __tablename__ = "attendance_intervals"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    #: Which client: "room" (a participant's page or bot) or "console".
    client: Mapped[str] = mapped_column(String(16), default="room")
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: left | dropped | removed | closed | crashed
    end_reason: Mapped[str] = mapped_column(String(16), default="", server_default="")


class ExcusedAbsence(Base):
    """The secretariat records that an office (or one person) is excused from a session."""

    __tablename__ = "excused_absences"
    __table_args__ = (
        CheckConstraint("(office_id IS NULL) <> (person_id IS NULL)", name="office_xor_person"),
        UniqueConstraint("meeting_id", "office_id", name="uq_excused_absences_meeting_office"),
        UniqueConstraint("meeting_id", "person_id", name="uq_excused_absences_meeting_person"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), nullable=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    entered_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RollCall(Base):
    __tablename__ = "roll_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RollCallResponse(Base):
    """A site answered the roll call (one answer per office)."""

    __tablename__ = "roll_call_responses"
    __table_args__ = (UniqueConstraint("roll_call_id", "office_id", name="uq_roll_call_responses_call_office"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    roll_call_id: Mapped[int] = mapped_column(ForeignKey("roll_calls.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    responded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Sanction(Base):
    """A moderator muted or removed a person in a meeting: it binds every connection of that person,
    present and future, across reconnects and server restarts, until a moderator lifts it."""

    __tablename__ = "sanctions"
    __table_args__ = (CheckConstraint("kind IN ('muted', 'removed')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    #: muted | removed
    kind: Mapped[str] = mapped_column(String(16))
    imposed_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    imposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    lifted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
