"""Offices: the places that join a session (provinces, the capital, ministries, commands, the secretariat)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from meetings.models.base import Base, UTCDateTime, utcnow


class OfficeKind(enum.StrEnum):
    SECRETARIAT = "secretariat"
    CAPITAL = "capital"
    PROVINCE = "province"
    MINISTRY = "ministry"
    MILITARY_REGION = "military_region"
    MILITARY_COMMAND = "military_command"


#: The order offices are listed in: the host first, then the capital, provinces, ministries, the military.
KIND_ORDER = {kind: i for i, kind in enumerate(OfficeKind)}


class Office(Base):
    __tablename__ = "offices"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[OfficeKind] = mapped_column(
        Enum(OfficeKind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e])
    )
    name_en: Mapped[str] = mapped_column(String(200))
    name_km: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Office {self.code}>"
