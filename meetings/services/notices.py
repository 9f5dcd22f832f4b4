"""Notices of changes to invitees (moved, cancelled, retitled, agenda changed), and reading them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meetings.db import Database
from meetings.errors import NotFound
from meetings.models import Meeting, Notice, Person
from meetings.policy import Action, Caller, require

KINDS = ("moved", "cancelled", "retitled", "agenda", "series_ended")


async def invitee_ids(session: AsyncSession, meeting: Meeting) -> set[int]:
    """Everyone invited: active people of the host and invited offices, and people invited by name."""
    office_ids = {i.office_id for i in meeting.invitations if i.office_id is not None} | {meeting.host_office_id}
    person_ids = {i.person_id for i in meeting.invitations if i.person_id is not None}
    rows = await session.execute(select(Person.id).where(
        Person.active.is_(True), or_(Person.office_id.in_(office_ids), Person.id.in_(person_ids))))
    return set(rows.scalars())


async def notify(session: AsyncSession, meeting: Meeting, kind: str, text: str, *,
                 skip_person_id: int | None = None) -> int:
    """Queue a notice to every invitee of ``meeting`` (the one who made the change excepted)."""
    assert kind in KINDS, kind
    recipients = await invitee_ids(session, meeting) - {skip_person_id}
    for person_id in sorted(recipients):
        session.add(Notice(person_id=person_id, meeting_id=meeting.id, kind=kind, text=text))
    return len(recipients)


class NoticeService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, caller: Caller, *, unread_only: bool = False, limit: int = 50) -> Sequence[Notice]:
        me = require(caller, Action.VIEW_OFFICES)  # any logged-in account; notices are one's own
        if me is None:
            return []
        async with self.db.read() as session:
            query = select(Notice).where(Notice.person_id == me.person_id)
            if unread_only:
                query = query.where(Notice.read_at.is_(None))
            query = query.order_by(Notice.created_at.desc(), Notice.id.desc()).limit(max(1, min(limit, 200)))
            return (await session.execute(query)).scalars().all()

    async def unread_count(self, caller: Caller) -> int:
        me = require(caller, Action.VIEW_OFFICES)
        if me is None:
            return 0
        async with self.db.read() as session:
            return int(await session.scalar(select(func.count(Notice.id)).where(
                Notice.person_id == me.person_id, Notice.read_at.is_(None))) or 0)

    async def mark_read(self, caller: Caller, notice_id: int | None = None) -> int:
        """Mark one notice (or, with None, all of them) read. Another person's notice does not exist."""
        me = require(caller, Action.VIEW_OFFICES)
        if me is None:
            return 0
        now = dt.datetime.now(dt.UTC)
        async with self.db.write() as uow:
            query = update(Notice).where(Notice.person_id == me.person_id, Notice.read_at.is_(None))
            if notice_id is not None:
                exists = await uow.session.scalar(select(Notice.id).where(
                    Notice.id == notice_id, Notice.person_id == me.person_id))
                if exists is None:
                    raise NotFound("no such notice")
                query = query.where(Notice.id == notice_id)
            result = await uow.session.execute(query.values(read_at=now))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
