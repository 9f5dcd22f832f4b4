"""What hangs off an agenda item before the session: documents and each office's position."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow
from meetings.models.meetings import _enum
from meetings.models.offices import Office


class AgendaDocument(Base):
    """A PDF attached to an agenda item; the file lives under the data directory, named by its SHA-256."""

    __tablename__ = "agenda_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(100), default="application/pdf")
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Stance(enum.StrEnum):
    NO_OBJECTION = "no_objection"
    WISH_TO_SPEAK = "wish_to_speak"
    OBJECTION = "objection"


class Position(Base):
    """An office's position on an agenda item, marked before the positions deadline."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("item_id", "office_id", name="uq_positions_item_office"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("agenda_items.id", ondelete="CASCADE"), index=True)
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    stance: Mapped[Stance] = mapped_column(_enum(Stance))
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    office: Mapped[Office] = relationship(lazy="joined")
