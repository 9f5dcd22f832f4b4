"""Weekly series of meetings, per-person calendar feeds and notices of changes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text, Time, UniqueConstraint,
                        true)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow
from meetings.models.meetings import MeetingKind, _enum
from meetings.models.offices import Office
from meetings.models.people import Person

PHNOM_PENH = "Asia/Phnom_Penh"


class MeetingSeries(Base):
    """A weekly rule ("every Friday 08:00 Phnom Penh time") that produces Meeting occurrences."""

    __tablename__ = "meeting_series"
    __table_args__ = (CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
                      CheckConstraint("duration_minutes BETWEEN 1 AND 1440", name="duration_range"))

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[MeetingKind] = mapped_column(_enum(MeetingKind))
    host_office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    #: Monday is 0, as in Python's ``date.weekday()``.
    weekday: Mapped[int] = mapped_column(Integer)
    local_time: Mapped[dt.time] = mapped_column(Time)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default=PHNOM_PENH)
    #: First and (optionally) last local date an occurrence may fall on.
    starts_on: Mapped[dt.date] = mapped_column(Date)
    until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    host_office: Mapped[Office] = relationship(lazy="joined")
    invitations: Mapped[list[SeriesInvitation]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class SeriesInvitation(Base):
    """Who every occurrence of a series invites (copied onto each occurrence when it is generated)."""

    __tablename__ = "series_invitations"
    __table_args__ = (
        CheckConstraint("(office_id IS NULL) <> (person_id IS NULL)", name="office_xor_person"),
        UniqueConstraint("series_id", "office_id", name="uq_series_invitations_series_office"),
        UniqueConstraint("series_id", "person_id", name="uq_series_invitations_series_person"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("meeting_series.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), nullable=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)


class CalendarFeed(Base):
    """A person's secret iCalendar feed address (calendar apps cannot log in). Only a hash is stored."""

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    person: Mapped[Person] = relationship(lazy="joined")


class Notice(Base):
    """A change an invitee should hear about: a meeting moved, cancelled, retitled, agenda changed."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: Plain text, already in the words the notice shows (no markup).
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
