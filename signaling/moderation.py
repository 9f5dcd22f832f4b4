"""Running a live session: lock, lobby, raised hands, enforced mute, removal, agenda, presence.

Every moderator action is checked on the server (``Participant.may_moderate``, which asks the
policy) and recorded in the audit trail through meetings/ services before it takes effect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meetings.services import Services
from meetings.services.live import Sanctions, agenda_payload
from signaling.errors import Forbidden, InvalidMessage, WrongState
from signaling.participant import Participant

if TYPE_CHECKING:
    from signaling.room import Room

STATS_INTERVAL_S = 2.0


@dataclass
class Presence:
    person_id: int
    office_id: int
    full_name: str
    status: str  # joined | lobby | dropped | left | removed
    since: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "office_id": self.office_id, "full_name": self.full_name,
                "status": self.status, "since": self.since}


class Moderation:
    def __init__(self, room: Room, services: Services, *, locked: bool, lobby_enabled: bool,
                 agenda: dict[str, Any], sanctions: Sanctions) -> None:
        self.room = room
        self.services = services
        self.locked = locked
        self.lobby_enabled = lobby_enabled
        self.agenda = agenda
        self.lobby: dict[str, Participant] = {}
        #: When each hand raised behind a node's pipe was first seen raised here (see :meth:`note_remote_hands`).
        self.remote_hands: dict[str, float] = {}
        #: People a moderator removed, and people a moderator muted: both bind the person (every connection,
        #: now and later) until lifted, and are kept in the database (meetings/services/live.py sanctions),
        #: so they outlive reconnects and restarts.
        self.banned: set[int] = set(sanctions.removed)
        self.force_muted: set[int] = set(sanctions.muted)
        self.presence: dict[int, Presence] = {
            person_id: Presence(person_id, office_id, name, "removed")
            for person_id, (office_id, name) in sanctions.removed.items()}

    # -- state for clients ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"locked": self.locked, "lobby_enabled": self.lobby_enabled}

    def hands(self) -> list[dict[str, Any]]:
        """The raised hands in the order raised: this room's people's and those behind a node's pipe."""
        raised = [{"participant_id": p.id, "full_name": p.grant.principal.full_name,
                   "office_name": p.grant.office_name_en, "raised_at": p.hand_raised_at}
                  for p in self.room.participants.values() if p.hand_raised_at is not None]
        for participant_id, at in self.remote_hands.items():
            entry = self.room.remote.get(participant_id)
            if entry is not None:
                raised.append({"participant_id": participant_id, "full_name": entry.get("full_name"),
                               "office_name": entry.get("office_name"), "raised_at": at})
        return sorted(raised, key=lambda hand: hand["raised_at"] or 0.0)

    def note_remote_hands(self) -> bool:
        """The hands raised behind a node's pipe (its tables say who), timed here as first seen raised;
        whether the queue changed."""
        raised = {pid for pid, entry in self.room.remote.items() if entry.get("hand_raised")}
        if raised == self.remote_hands.keys():
            return False
        now = time.time()
        self.remote_hands = {pid: self.remote_hands.get(pid, now) for pid in raised}
        return True

    def moderators(self) -> list[Participant]:
        return [p for p in self.room.participants.values() if p.may_moderate]

    async def _to_moderators(self, event: str, data: dict[str, Any]) -> None:
        for moderator in self.moderators():
            await self.room.outbox.to(moderator, event, data)

    async def set_presence(self, participant: Participant, status: str) -> None:
        principal = participant.grant.principal
        self.presence[principal.person_id] = Presence(principal.person_id, principal.office_id,
                                                      principal.full_name, status)
        await self._to_moderators("presence", {"people": [p.public() for p in self.presence.values()]})

    # -- admission --------------------------------------------------------------------------
    def admission(self, participant: Participant) -> str:
        """'room', 'lobby', or raise: may this participant come in now?"""
        if participant.person_id in self.banned:
            raise Forbidden("you were removed from this meeting", code="removed")
        if participant.may_moderate:
            return "room"
        if self.locked:
            raise Forbidden("the meeting is locked", code="locked")
        return "lobby" if self.lobby_enabled else "room"

    async def wait_in_lobby(self, participant: Participant) -> None:
        participant.in_lobby = True
        self.lobby[participant.id] = participant
        await self.set_presence(participant, "lobby")
        await self._lobby_changed()

    async def _lobby_changed(self) -> None:
        await self._to_moderators("lobby", {"waiting": [p.public() for p in self.lobby.values()]})

    async def leave_lobby(self, participant: Participant) -> None:
        if self.lobby.pop(participant.id, None) is not None:
            await self._lobby_changed()

    # -- participant requests ---------------------------------------------------------------
    async def raise_hand(self, participant: Participant, raised: bool) -> None:
        if raised and participant.hand_raised_at is None:
            participant.hand_raised_at = time.time()
        elif not raised:
            participant.hand_raised_at = None
        await self.room.outbox.broadcast(self.room, "hands", {"queue": self.hands()})

    async def report_stats(self, participant: Participant, stats: dict[str, float | None]) -> None:
        now = time.monotonic()
        if now - participant.last_stats_at < STATS_INTERVAL_S:
            return
        participant.last_stats_at = now
        participant.quality = {k: (round(v, 1) if v is not None else None) for k, v in stats.items()}
        await self.room.outbox.broadcast(self.room, "quality", {"participant_id": participant.id,
                                                                **participant.quality})

    # -- moderator actions ------------------------------------------------------------------
    def connections_of(self, person_id: int, *, lobby: bool = False) -> list[Participant]:
        """Every present connection of one person (a meeting page and a console), also in the lobby."""
        present = [p for p in self.room.participants.values() if p.person_id == person_id]
        if lobby:
            present += [p for p in self.lobby.values() if p.person_id == person_id]
        return present

    def _target(self, payload: dict[str, Any], *, lobby: bool = False) -> Participant:
        pid = payload.get("participant_id")
        if pid is None:
            raise InvalidMessage("participant_id is required for this action")
        target = (self.lobby if lobby else self.room.participants).get(pid)
        if target is None:
            raise WrongState("no such participant" + (" in the lobby" if lobby else ""))
        return target

    async def moderate(self, moderator: Participant, payload: dict[str, Any]) -> dict[str, Any]:
        if not moderator.may_moderate:
            raise Forbidden("only the secretariat and the chair moderate this meeting")
        action = payload["action"]
        caller = moderator.caller
        meeting_id = self.room.meeting_id
        live = self.services.live
        if action in ("mute", "unmute"):
            target = self._target(payload)
            await live.sanction(caller, meeting_id, target.person_id, f"participant.{action}",
                                {"participant_id": target.id})
            if action == "mute":
                self.force_muted.add(target.person_id)
            else:
                self.force_muted.discard(target.person_id)
            for connection in self.connections_of(target.person_id):  # the person, not one connection
                await self.room.force_mute(connection, action == "mute")
        elif action == "remove":
            target = self._target(payload)
            if target.id == moderator.id:
                raise InvalidMessage("you cannot remove yourself")
            await live.sanction(caller, meeting_id, target.person_id, "participant.remove",
                                {"participant_id": target.id})
            self.banned.add(target.person_id)
            for connection in self.connections_of(target.person_id, lobby=True):  # every connection
                await self.room.outbox.to(connection, "removed", {"reason": "removed by a moderator"})
                await self.room.remove(connection, status="removed")
                await self.room.outbox.disconnect(connection)
        elif action == "readmit":
            person_id = payload.get("person_id")
            if person_id is None:
                raise InvalidMessage("person_id is required to let a removed person back in")
            if person_id not in self.banned:
                raise WrongState("that person is not removed from this meeting")
            await live.sanction(caller, meeting_id, person_id, "participant.readmit", {})
            self.banned.discard(person_id)
            presence = self.presence.get(person_id)
            if presence is not None:
                presence.status, presence.since = "left", time.time()
                await self._to_moderators("presence", {"people": [p.public() for p in self.presence.values()]})
        elif action == "admit":
            target = self._target(payload, lobby=True)
            await live.record_moderation(caller, meeting_id, "lobby.admit",
                                         {"person_id": target.person_id, "participant_id": target.id})
            await self.leave_lobby(target)
            target.in_lobby = False
            joined = await self.room.add(target)
            await self.room.outbox.to(target, "admitted", joined)
        elif action == "lower_hand":
            target = self._target(payload)
            await live.record_moderation(caller, meeting_id, "hand.lower", {"participant_id": target.id})
            await self.raise_hand(target, False)
        elif action == "spotlight":
            await self.room.spotlight(moderator, self._target(payload).id)
        elif action == "spotlight_off":
            await self.room.spotlight(moderator, None)
        elif action in ("lock", "unlock"):
            await live.set_locked(caller, meeting_id, action == "lock")
            self.locked = action == "lock"
            await self.room.outbox.broadcast(self.room, "room_state", self.state())
        elif action in ("lobby_on", "lobby_off"):
            await live.set_lobby(caller, meeting_id, action == "lobby_on")
            self.lobby_enabled = action == "lobby_on"
            await self.room.outbox.broadcast(self.room, "room_state", self.state())
        return {}

    async def set_agenda_item(self, moderator: Participant, item_id: int | None) -> dict[str, Any]:
        if not moderator.may_moderate:
            raise Forbidden("only the secretariat and the chair set the current item")
        await self.services.live.set_current_item(moderator.caller, self.room.meeting_id, item_id)
        meeting = await self.services.meetings.get(moderator.caller, self.room.meeting_id)
        self.agenda = agenda_payload(meeting)
        await self.room.outbox.broadcast(self.room, "agenda", self.agenda)
        return {}
