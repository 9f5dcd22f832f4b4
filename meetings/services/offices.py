"""Offices: list for everyone logged in; create and edit for the secretariat."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from meetings.db import Database
from meetings.errors import Conflict, NotFound, ValidationFailed
from meetings.models import Office, OfficeKind
from meetings.models.offices import KIND_ORDER
from meetings.policy import Action, Caller, require
from meetings.services.common import OFFICE_CODE_RE, clean_text, record


def _clean_kind(value: object) -> OfficeKind:
    try:
        return OfficeKind(str(value))
    except ValueError:
        raise ValidationFailed(
            f"kind must be one of {', '.join(k.value for k in OfficeKind)}", field="kind"
        ) from None


class OfficeService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, caller: Caller, *, include_inactive: bool = False) -> Sequence[Office]:
        require(caller, Action.VIEW_OFFICES)
        async with self.db.read() as session:
            query = select(Office)
            if not include_inactive:
                query = query.where(Office.active.is_(True))
            offices = (await session.execute(query)).scalars().all()
        return sorted(offices, key=lambda o: (KIND_ORDER[o.kind], o.name_en))

    async def get(self, caller: Caller, office_id: int) -> Office:
        require(caller, Action.VIEW_OFFICES)
        async with self.db.read() as session:
            office = await session.get(Office, office_id)
        if office is None:
            raise NotFound("no such office")
        return office

    async def create(self, caller: Caller, *, code: object, kind: object, name_en: object,
                     name_km: object) -> Office:
        require(caller, Action.MANAGE_OFFICES)
        if not isinstance(code, str) or not OFFICE_CODE_RE.match(code.strip().upper()):
            raise ValidationFailed("code must be 2-32 characters: letters, digits, dash, underscore", field="code")
        office = Office(
            code=code.strip().upper(),
            kind=_clean_kind(kind),
            name_en=clean_text(name_en, "name_en", max_length=200),
            name_km=clean_text(name_km, "name_km", max_length=200),
            active=True,
        )
        async with self.db.write() as uow:
            if await uow.session.scalar(select(Office.id).where(Office.code == office.code)):
                raise Conflict(f"an office with code {office.code} exists", field="code")
            uow.session.add(office)
            await uow.session.flush()
            record(uow, caller, "office.create", target_type="office", target_id=office.id,
                   details={"code": office.code, "kind": office.kind.value, "name_en": office.name_en})
        return office

    async def update(self, caller: Caller, office_id: int, *, name_en: object = None, name_km: object = None,
                     kind: object = None, active: object = None) -> Office:
        require(caller, Action.MANAGE_OFFICES)
        async with self.db.write() as uow:
            office = await uow.session.get(Office, office_id)
            if office is None:
                raise NotFound("no such office")
            changes: dict[str, list[object]] = {}
            if name_en is not None:
                value = clean_text(name_en, "name_en", max_length=200)
                if value != office.name_en:
                    changes["name_en"] = [office.name_en, value]
                    office.name_en = value
            if name_km is not None:
                value = clean_text(name_km, "name_km", max_length=200)
                if value != office.name_km:
                    changes["name_km"] = [office.name_km, value]
                    office.name_km = value
            if kind is not None:
                new_kind = _clean_kind(kind)
                if new_kind != office.kind:
                    changes["kind"] = [office.kind.value, new_kind.value]
                    office.kind = new_kind
            if active is not None:
                if not isinstance(active, bool):
                    raise ValidationFailed("active must be true or false", field="active")
                if active != office.active:
                    changes["active"] = [office.active, active]
                    office.active = active
            if changes:
                record(uow, caller, "office.update", target_type="office", target_id=office.id,
                       details={"changes": changes})
        return office
