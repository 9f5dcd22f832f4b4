"""Provincial nodes: an office's edge server, registered by the secretariat, dialling the centre with a
credential of its own. Only the credential's SHA-256 is kept, with a short public prefix to name it by;
a node is never deleted: revoking it leaves the row (who, when) as the record."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from meetings.models.base import Base, UTCDateTime, utcnow
from meetings.models.offices import Office


class ProvincialNode(Base):
    __tablename__ = "provincial_nodes"
    __table_args__ = (
        UniqueConstraint("credential_prefix", name="uq_provincial_nodes_credential_prefix"),
        UniqueConstraint("credential_hash", name="uq_provincial_nodes_credential_hash"),
        # A name is taken while its node is active: a revoked node's replacement may take it again.
        Index("uq_provincial_nodes_office_active_name", "office_id", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: RESTRICT: the node is a record of who could carry an office's part of a session.
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    #: The credential's first characters (``cabn_`` and 8 more): public, shown in lists and audit rows.
    credential_prefix: Mapped[str] = mapped_column(String(16))
    #: Hex SHA-256 of the whole credential; the credential itself is shown once and never stored.
    credential_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Who registered it; None: the server's operator (``cabinet nodes add``).
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), nullable=True)
    #: The last time the node authenticated (None: never).
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    office: Mapped[Office] = relationship(lazy="joined")

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def __repr__(self) -> str:
        return f"<ProvincialNode {self.id} {self.name} {self.credential_prefix}>"
