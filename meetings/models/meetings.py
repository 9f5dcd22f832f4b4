"""Meetings and invitations (scheduling, agenda and the rest come later)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, false, CheckConstraint, Enum, ForeignKey, Integer, String, UniqueConstraint
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


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])


class Meeting(Base):
    __tablename__ = "meetings"

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
    current_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("agenda_items.id", use_alter=True, ondelete="SET NULL"), nullable=True
    )

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
