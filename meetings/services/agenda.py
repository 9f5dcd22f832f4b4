"""Agenda items of a meeting (their full life: documents, positions, come with the session issue)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from meetings.db import Database
from meetings.errors import NotFound, ValidationFailed
from meetings.models import AgendaItem, Office
from meetings.policy import Action, Caller, require
from meetings.services.common import clean_text, meeting_access, record
from meetings.services.meetings import MeetingService
from meetings.services.notices import notify


class AgendaService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def list(self, caller: Caller, meeting_id: int) -> Sequence[AgendaItem]:
        meeting = await self.meetings.get(caller, meeting_id)  # visibility
        return list(meeting.agenda)

    async def add(self, caller: Caller, meeting_id: int, *, title: object, presenter_office_id: object = None,
                  planned_minutes: object = 10) -> AgendaItem:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.MANAGE_MEETING, meeting_access(meeting))
        clean_title = clean_text(title, "title", max_length=300)
        if isinstance(planned_minutes, bool) or not isinstance(planned_minutes, int) or not 1 <= planned_minutes <= 600:
            raise ValidationFailed("planned_minutes must be between 1 and 600", field="planned_minutes")
        async with self.db.write() as uow:
            presenter = None
            if presenter_office_id is not None:
                presenter = await uow.session.get(Office, presenter_office_id)
                if presenter is None or not presenter.active:
                    raise ValidationFailed("no such active office", field="presenter_office_id")
            position = int(await uow.session.scalar(
                select(func.coalesce(func.max(AgendaItem.position), 0)).where(AgendaItem.meeting_id == meeting_id)
            ) or 0) + 1
            item = AgendaItem(meeting_id=meeting_id, position=position, title=clean_title,
                              presenter_office_id=presenter.id if presenter else None,
                              planned_minutes=planned_minutes)
            uow.session.add(item)
            await uow.session.flush()
            record(uow, caller, "agenda.add", target_type="meeting", target_id=meeting_id,
                   details={"item_id": item.id, "title": clean_title, "position": position})
            if meeting.state.value == "scheduled" and not caller.system:
                await notify(uow.session, meeting, "agenda", f"{meeting.title}: item {position} added to the "
                             f"agenda: {clean_title}.", skip_person_id=caller.actor_id)
        async with self.db.read() as session:
            loaded = await session.get(AgendaItem, item.id)
        if loaded is None:  # pragma: no cover
            raise NotFound("no such agenda item")
        return loaded
