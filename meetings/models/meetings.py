"""Meetings (one occurrence of a session or a briefing), their agenda and invitations."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (Boolean, CheckConstraint, Date, Enum, ForeignKey, Integer, String, Text, UniqueConstraint,
                        false, true)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow
from meetings.models.offices import Office
from meetings.models.people import Person


class MeetingKind(enum.StrEnum):
    CABINET_SESSION = "cabinet_session"  # hosted by the secretariat
    BRIEFING = "briefing"  # hosted by a command or another office; visible only to invitees


class MeetingState(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    def is_behind(self, other: MeetingState) -> bool:
        """Whether a session in this state has not got as far as ``other`` (scheduled, open, closed: a
        session never goes back; a cancellation is no step of it)."""
        order = (MeetingState.SCHEDULED, MeetingState.OPEN, MeetingState.CLOSED)
        return self in order and other in order and order.index(self) < order.index(other)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Meeting(Base):
    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("series_id", "occurrence_date", name="uq_meetings_series_occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[MeetingKind] = mapped_column(_enum(MeetingKind))
    state: Mapped[MeetingState] = mapped_column(_enum(MeetingState), default=MeetingState.SCHEDULED)
    host_office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: No new participants (moderators excepted) while locked.
    locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Participants wait in a lobby until a moderator admits them.
    lobby_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: The session is recorded from its opening to its closing (meetings/services/recordings.py).
    record_sessions: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    current_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("agenda_items.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )
    #: The weekly series this occurrence belongs to, and the local date it was generated for (kept when
    #: the occurrence is moved, so regenerating the series never duplicates or resurrects it).
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_series.id", ondelete="SET NULL"), nullable=True, index=True
    )
    occurrence_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: iCalendar SEQUENCE: bumped on every change invitees must see (time, cancellation, title).
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Quorum: at least this share of the invited sites (offices) present.
    quorum_percent: Mapped[int] = mapped_column(Integer, default=50, server_default="50")
    #: A drop shorter than this is not an absence.
    grace_seconds: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    #: Offices mark their positions on the agenda items before this time.
    positions_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    host_office: Mapped[Office] = relationship(lazy="joined")
    invitations: Mapped[list[Invitation]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", back_populates="meeting"
    )
    agenda: Mapped[list[AgendaItem]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AgendaItem.position",
        foreign_keys="AgendaItem.meeting_id", back_populates="meeting",
    )


class AgendaItem(Base):
    """One item of a meeting's agenda, in order."""

    __tablename__ = "agenda_items"
    __table_args__ = (UniqueConstraint("meeting_id", "position", name="uq_agenda_items_meeting_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    presenter_office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), nullable=True)
    planned_minutes: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the item was first made current, and when it last stopped being current (live record).
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    meeting: Mapped[Meeting] = relationship(back_populates="agenda", foreign_keys=[meeting_id])
    presenter_office: Mapped[Office | None] = relationship(lazy="joined")


class Invitation(Base):
    """An invitation of a whole office (everyone in it) or of one person."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("(office_id IS NULL) <> (person_id IS NULL)", name="office_xor_person"),
        UniqueConstraint("meeting_id", "office_id", name="uq_invitations_meeting_office"),
        UniqueConstraint("meeting_id", "person_id", name="uq_invitations_meeting_person"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), nullable=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    meeting: Mapped[Meeting] = relationship(back_populates="invitations")
    office: Mapped[Office | None] = relationship(lazy="joined")
    person: Mapped[Person | None] = relationship(lazy="joined")
