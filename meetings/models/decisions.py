"""Decisions on agenda items, votes with one ballot per site, and the minutes."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow
from meetings.models.meetings import _enum


class Outcome(enum.StrEnum):
    ADOPTED = "adopted"
    ADOPTED_WITH_AMENDMENTS = "adopted_with_amendments"
    DEFERRED = "deferred"
    REJECTED = "rejected"


class Decision(Base):
    """The decision on one agenda item (one per item; changed until the minutes are approved)."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("item_id", name="uq_decisions_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"))
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome))
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: Adopted together with the other unopposed items at the start of the session.
    en_bloc: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    vote_id: Mapped[int | None] = mapped_column(ForeignKey("votes.id", ondelete="SET NULL"), nullable=True)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Choice(enum.StrEnum):
    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"


class Vote(Base):
    """A vote the chair called on an item; quorum is recorded as it stood when the vote opened."""

    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id", ondelete="SET NULL"), nullable=True)
    question: Mapped[str] = mapped_column(Text)
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sites_present: Mapped[int] = mapped_column(Integer)
    sites_invited: Mapped[int] = mapped_column(Integer)
    quorum_required: Mapped[int] = mapped_column(Integer)
    quorum_met: Mapped[bool] = mapped_column(Boolean)

    ballots: Mapped[list[Ballot]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class Ballot(Base):
    """One site's vote (the last person of the office to vote before closing sets it)."""

    __tablename__ = "ballots"
    __table_args__ = (UniqueConstraint("vote_id", "office_id", name="uq_ballots_vote_office"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    vote_id: Mapped[int] = mapped_column(ForeignKey("votes.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    choice: Mapped[Choice] = mapped_column(_enum(Choice))
    cast_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MinutesState(enum.StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"


class Minutes(Base):
    """The minutes of one meeting: drafted from the record, edited, then approved and locked."""

    __tablename__ = "minutes"
    __table_args__ = (UniqueConstraint("meeting_id", name="uq_minutes_meeting"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    state: Mapped[MinutesState] = mapped_column(_enum(MinutesState), default=MinutesState.DRAFT)
    #: The minutes as a JSON document (items, times, speakers, decisions, votes, attendance, edited text).
    body: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    drafted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: SHA-256 of the canonical body at approval; also written into the audit trail.
    sha256: Mapped[str] = mapped_column(String(64), default="", server_default="")
    #: The signed checkpoint of the audit chain's head at approval (meetings/audit_checkpoints.py), printed
    #: with the minutes so a paper copy can hold the trail to what it was that day.
    audit_checkpoint: Mapped[str] = mapped_column(Text, default="", server_default="")
