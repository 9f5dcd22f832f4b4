"""Changes made while a session runs: lock, lobby, current agenda item, and moderation records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from meetings.db import Database
from meetings.errors import ValidationFailed
from meetings.models import AgendaItem, Meeting
from meetings.policy import Action, Caller, require
from meetings.services.common import meeting_access, record
from meetings.services.meetings import MeetingService
from meetings.services.session import mark_item_times
from meetings.models.base import utcnow

MODERATION_ACTIONS = frozenset({"participant.mute", "participant.unmute", "participant.remove", "lobby.admit",
                                "hand.lower"})


class LiveService:
    def __init__(self, db: Database, meetings: MeetingService) -> None:
        self.db = db
        self.meetings = meetings

    async def _moderated(self, caller: Caller, meeting_id: int) -> Meeting:
        meeting = await self.meetings.get(caller, meeting_id)
        require(caller, Action.MODERATE_MEETING, meeting_access(meeting))
        return meeting

    async def set_locked(self, caller: Caller, meeting_id: int, locked: bool) -> None:
        meeting = await self._moderated(caller, meeting_id)
        if meeting.locked == locked:
            return
        async with self.db.write() as uow:
            await uow.session.execute(update(Meeting).where(Meeting.id == meeting_id).values(locked=locked))
            record(uow, caller, "meeting.lock" if locked else "meeting.unlock", target_type="meeting",
                   target_id=meeting_id)

    async def set_lobby(self, caller: Caller, meeting_id: int, enabled: bool) -> None:
        meeting = await self._moderated(caller, meeting_id)
        if meeting.lobby_enabled == enabled:
            return
        async with self.db.write() as uow:
            await uow.session.execute(update(Meeting).where(Meeting.id == meeting_id).values(lobby_enabled=enabled))
            record(uow, caller, "meeting.lobby", target_type="meeting", target_id=meeting_id,
                   details={"enabled": enabled})

    async def set_current_item(self, caller: Caller, meeting_id: int, item_id: int | None) -> None:
        meeting = await self._moderated(caller, meeting_id)
        if item_id is not None and item_id not in {i.id for i in meeting.agenda}:
            raise ValidationFailed("no such agenda item in this meeting", field="item_id")
        async with self.db.write() as uow:
            previous = meeting.current_item_id
            await mark_item_times(uow.session, meeting, item_id, utcnow())
            await uow.session.execute(update(Meeting).where(Meeting.id == meeting_id).values(current_item_id=item_id))
            record(uow, caller, "agenda.current", target_type="meeting", target_id=meeting_id,
                   details={"item_id": item_id, "previous_item_id": previous})

    async def record_moderation(self, caller: Caller, meeting_id: int, action: str, details: dict[str, Any]) -> None:
        """Audit a moderation taken on the live session (the effect itself lives in the SFU)."""
        if action not in MODERATION_ACTIONS:
            raise ValueError(f"unknown moderation action {action!r}")
        await self._moderated(caller, meeting_id)
        async with self.db.write() as uow:
            record(uow, caller, action, target_type="meeting", target_id=meeting_id, details=details)


def agenda_payload(meeting: Meeting) -> dict[str, Any]:
    def item(i: AgendaItem) -> dict[str, Any]:
        return {"id": i.id, "position": i.position, "title": i.title, "planned_minutes": i.planned_minutes,
                "presenter": i.presenter_office.name_en if i.presenter_office else None,
                "presenter_km": i.presenter_office.name_km if i.presenter_office else None,
                "started_at": i.started_at.isoformat() if i.started_at else None,
                "ended_at": i.ended_at.isoformat() if i.ended_at else None}

    return {"items": [item(i) for i in meeting.agenda], "current_item_id": meeting.current_item_id}
