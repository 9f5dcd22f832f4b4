"""Changes made while a session runs: lock, lobby, current agenda item, and moderation records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from meetings.db import Database
from meetings.errors import ValidationFailed
from meetings.models import AgendaItem, Meeting, Person, Sanction
from meetings.policy import Action, Caller, require
from meetings.services.common import meeting_access, record
from meetings.services.meetings import MeetingService
from meetings.services.session import mark_item_times
from meetings.models.base import utcnow

MODERATION_ACTIONS = frozenset({"lobby.admit", "hand.lower", "stage.spotlight", "stage.spotlight_off"})
#: Moderations that bind a person until lifted: action -> (kind of sanction, imposed or lifted).
SANCTION_ACTIONS = {"participant.mute": ("muted", True), "participant.unmute": ("muted", False),
                    "participant.remove": ("removed", True), "participant.readmit": ("removed", False)}


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

    async def sanction(self, caller: Caller, meeting_id: int, person_id: int, action: str,
                       details: dict[str, Any]) -> None:
        """Impose or lift a person's mute or removal (audited). It is kept in the database, so it binds the
        person's every connection across reconnects and server restarts until a moderator lifts it."""
        if action not in SANCTION_ACTIONS:
            raise ValueError(f"unknown sanction {action!r}")
        kind, impose = SANCTION_ACTIONS[action]
        await self._moderated(caller, meeting_id)
        now = utcnow()
        async with self.db.write() as uow:
            active = (await uow.session.scalars(select(Sanction).where(
                Sanction.meeting_id == meeting_id, Sanction.person_id == person_id, Sanction.kind == kind,
                Sanction.lifted_at.is_(None)))).all()
            if impose and not active:
                uow.session.add(Sanction(meeting_id=meeting_id, person_id=person_id, kind=kind,
                                         imposed_by_id=caller.actor_id, imposed_at=now))
            for row in active if not impose else ():
                row.lifted_at, row.lifted_by_id = now, caller.actor_id
            record(uow, caller, action, target_type="meeting", target_id=meeting_id,
                   details={**details, "person_id": person_id})

    async def sanctions(self, caller: Caller, meeting_id: int) -> Sanctions:
        """The people muted and the people removed in a meeting, now (for a room being set up)."""
        await self.meetings.get(caller, meeting_id)
        return await self.room_sanctions(meeting_id)

    async def room_sanctions(self, meeting_id: int) -> Sanctions:
        """:meth:`sanctions` for a room a provincial node's pipe opens (the node service checked the
        meeting is its office's: meetings/services/nodes.py ``node_meeting``)."""
        async with self.db.read() as session:
            rows = (await session.execute(
                select(Sanction.kind, Person.id, Person.office_id, Person.full_name)
                .join(Person, Person.id == Sanction.person_id)
                .where(Sanction.meeting_id == meeting_id, Sanction.lifted_at.is_(None)))).all()
        return Sanctions(muted=frozenset(r[1] for r in rows if r[0] == "muted"),
                         removed={r[1]: (r[2], r[3]) for r in rows if r[0] == "removed"})


@dataclass(frozen=True)
class Sanctions:
    muted: frozenset[int] = frozenset()
    #: person id -> (office id, full name), to show them as removed on the console after a restart
    removed: dict[int, tuple[int, str]] = field(default_factory=dict)


def agenda_payload(meeting: Meeting) -> dict[str, Any]:
    def item(i: AgendaItem) -> dict[str, Any]:
        return {"id": i.id, "position": i.position, "title": i.title, "planned_minutes": i.planned_minutes,
                "presenter": i.presenter_office.name_en if i.presenter_office else None,
                "presenter_km": i.presenter_office.name_km if i.presenter_office else None,
                "started_at": i.started_at.isoformat() if i.started_at else None,
                "ended_at": i.ended_at.isoformat() if i.ended_at else None}

    return {"items": [item(i) for i in meeting.agenda], "current_item_id": meeting.current_item_id}
