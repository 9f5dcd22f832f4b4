"""Running the session in a live room: open/close, floor control, attendance, quorum, roll call.

Floor control is enforced in the SFU: while the session is open (and after it closed) the Router
forwards audio only from moderators (``Participant.may_moderate``) and the person holding the floor;
everyone else's audio producers are muted in the Router, including producers published later. Before
the session opens everyone is heard (sound check).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from media import Producer
from meetings.models import Meeting, MeetingState
from meetings.models.base import utcnow
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.live import agenda_payload
from signaling.attendance import AttendanceRecorder
from signaling.errors import Forbidden, InvalidMessage, WrongState
from signaling.participant import Participant

if TYPE_CHECKING:
    from signaling.room import Room

log = logging.getLogger("signaling.floor")

#: Open attendance intervals are refreshed this often (seconds): the most presence a crash can lose.
HEARTBEAT_SECONDS = 3.0
#: Register and quorum pushes are at most this frequent (seconds).
REGISTER_THROTTLE_SECONDS = 1.0
SERVER = Caller(principal=None, address="server", system=True)


@dataclass
class FloorHolder:
    #: The grant's row (None: a holder behind the pipe, whose record the centre keeps).
    grant_id: int | None
    person_id: int
    #: The holder's connection; None while they are not connected (a grant restored after a restart).
    participant: Participant | None
    granted_at: float
    limit_seconds: int | None
    #: full_name, office_name, office_name_km: shown while the holder is away too.
    names: dict[str, Any]
    timer: asyncio.Task[Any] | None = None
    #: When the holder's connection was lost: the grant ends then if they do not come back in time.
    lost_at: dt.datetime | None = None
    #: A holder who joined at the far end of a node's pipe (a roster entry here, no connection).
    remote_id: str | None = None

    def public(self) -> dict[str, Any]:
        remaining = None
        if self.limit_seconds is not None:
            remaining = max(0.0, round(self.granted_at + self.limit_seconds - time.time(), 1))
        participant_id = self.participant.id if self.participant else self.remote_id
        return {"participant_id": participant_id, "person_id": self.person_id,
                **self.names, "granted_at": self.granted_at, "limit_seconds": self.limit_seconds,
                "remaining_seconds": remaining}


def _host_holder(holder: dict[str, Any] | None) -> dict[str, Any] | None:
    """The host's floor holder as a page shows one (the time left counted here)."""
    if holder is None:
        return None
    limit, granted = holder.get("limit_seconds"), holder.get("granted_at")
    remaining = None
    if isinstance(limit, int) and isinstance(granted, (int, float)):
        remaining = max(0.0, round(granted + limit - time.time(), 1))
    return {**holder, "remaining_seconds": remaining}


def holder_names(public: dict[str, Any]) -> dict[str, Any]:
    return {k: public.get(k) for k in ("full_name", "office_name", "office_name_km")}


class SessionControl:
    def __init__(self, room: Room, services: Services) -> None:
        self.room = room
        self.services = services
        self.state = MeetingState.SCHEDULED
        self.opened_at: str | None = None
        self.closed_at: str | None = None
        self.holder: FloorHolder | None = None
        self.roll_call: dict[str, Any] | None = None
        self.quorum: dict[str, Any] | None = None
        self.recorder = AttendanceRecorder(room.meeting_id, services.attendance)
        #: The session and floor are the meeting host's (see :meth:`defer_to_host`), and who holds its floor
        #: (what the host says of them: provincial_nodes/pipe_frames.py FLOOR_FIELDS).
        self.deferred = False
        #: A deferred room that still gates its own people's voices, by the host's floor (the centre's room of
        #: a briefing a node hosts: its people are at many sites). A node's room of a meeting the centre hosts
        #: gates nothing: its hall hears its own, and the centre gates what the session hears.
        self.gates_for_host = False
        self.host_floor: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._push_due = False
        self._heartbeat: asyncio.Task[Any] | None = None
        #: A planned stop of the server is closing this room: the floor grant stays open, to be restored.
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------
    async def restore(self, meeting: Meeting) -> None:
        """Take the session's state from the database when the room is created."""
        self._set_state(meeting)
        current = await self.services.roll_calls.current(meeting.id)
        self.roll_call = _roll_call(current) if current else None
        if self.state is MeetingState.OPEN:
            await self._restore_floor(meeting)
        self._heartbeat = asyncio.ensure_future(self._beat())

    async def _restore_floor(self, meeting: Meeting) -> None:
        """A grant still running (the server restarted under it) is the floor again: the holder keeps it
        if they come back within the meeting's grace window; otherwise it ends at their last evidence of
        life, not at the restart."""
        grant = await self.services.floor.open_grant(SERVER, meeting.id)
        if grant is None:
            return
        last = await self.services.attendance.last_evidence(meeting.id, grant.person_id)
        names = {"full_name": grant.person.full_name, "office_name": grant.office.name_en,
                 "office_name_km": grant.office.name_km}
        holder = FloorHolder(grant.id, grant.person_id, None, grant.granted_at.timestamp(), grant.limit_seconds,
                             names, lost_at=last or grant.granted_at)
        self.holder = holder
        if holder.limit_seconds is not None:
            holder.timer = asyncio.ensure_future(self._expire(holder))
        self._spawn(self._end_if_not_back(holder))
        log.info("floor grant restored", extra={"event": "floor.restored", "meeting_id": meeting.id,
                                                  "grant_id": grant.id})

    def _set_state(self, meeting: Meeting) -> None:
        self.state = meeting.state
        self.opened_at = meeting.opened_at.isoformat() if meeting.opened_at else None
        self.closed_at = meeting.closed_at.isoformat() if meeting.closed_at else None

    async def close(self) -> None:
        """The room closes (everyone left): the last writes, then stop."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self.holder is not None and not self._stopping:
            await self._end_floor("left", SERVER)
        await self.recorder.flush()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task failed", exc_info=task.exception(),
                      extra={"event": "session.task_failed", "meeting_id": self.room.meeting_id})

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.recorder.flush(heartbeat=True)

    # -- what clients see -------------------------------------------------------------------
    def session_payload(self) -> dict[str, Any]:
        """``run_by_host``: the session is run on the host's server (its moderators' controls are there)."""
        return {"state": self.state.value, "opened_at": self.opened_at, "closed_at": self.closed_at,
                "run_by_host": self.deferred}

    def floor_payload(self) -> dict[str, Any]:
        if self.deferred:
            return {"holder": _host_holder(self.host_floor)}
        return {"holder": self.holder.public() if self.holder else None}

    def join_payload(self, participant: Participant) -> dict[str, Any]:
        return {"session": self.session_payload(), "floor": self.floor_payload(),
                "roll_call": self._roll_call_for(participant), "quorum": self.quorum,
                "heard": self.heard(participant)}

    def _roll_call_for(self, participant: Participant) -> dict[str, Any] | None:
        if self.roll_call is None:
            return None
        if participant.may_moderate:
            return self.roll_call
        return {k: v for k, v in self.roll_call.items() if k != "sites"}

    async def _broadcast_roll_call(self) -> None:
        for p in list(self.room.participants.values()):
            await self.room.outbox.to(p, "roll_call", {"roll_call": self._roll_call_for(p)})

    # -- the audio gate ---------------------------------------------------------------------
    @property
    def gated(self) -> bool:
        return self.state is not MeetingState.SCHEDULED and (not self.deferred or self.gates_for_host)

    def defer_to_host(self, *, gate_here: bool = False) -> None:
        """The meeting's session is run on another server, whose pipe tables this room follows (state and
        floor). A provincial node's share of a meeting hosted elsewhere (``gate_here`` False): the host's
        server gates the voices the rest of the session hears; the node's hall hears its own. The centre's
        room of a briefing the host's node runs (``gate_here`` True): its people's voices are heard by the
        node's floor. Its own floor, if any, ends."""
        if self.deferred and self.gates_for_host == gate_here:
            return
        self.deferred, self.gates_for_host = True, gate_here
        if self.holder is not None:
            self._spawn(self._end_floor("revoked", SERVER))
        self.gate_all()
        self._spawn(self.room.outbox.broadcast(self.room, "session", self.session_payload()))

    async def resume_hosting(self) -> None:
        """The host's server no longer carries the meeting (its node left it): this room runs the session
        again, from the state it followed."""
        if not self.deferred:
            return
        self.deferred = self.gates_for_host = False
        self.host_floor = None
        self.gate_all()
        await self.room.outbox.broadcast(self.room, "session", self.session_payload())
        await self.room.outbox.broadcast(self.room, "floor", self.floor_payload())

    def refuse_if_deferred(self) -> None:
        if self.deferred:
            raise WrongState("this meeting's session is run by its host's server: its moderators open it, close it "
                             "and give the floor there", code="run_by_host")

    async def follow_host(self, state: MeetingState, opened_at: dt.datetime | None,
                          closed_at: dt.datetime | None) -> bool:
        """A deferred room takes its host's session state (the host's server opened or closed the session;
        this server's copy of the meeting says so already): its people's pages follow, and its recording
        of the local tracks starts with the session and stops with it. Whether anything changed."""
        if not self.deferred or state is self.state or state.is_behind(self.state):
            return False  # (a table from before a step this room has taken: a session never goes back)
        self.state = state
        self.opened_at = opened_at.isoformat() if opened_at else None
        self.closed_at = closed_at.isoformat() if closed_at else None
        self.gate_all()  # once the gate is shut: a voice the session does not hear is not recorded
        if state is MeetingState.OPEN:
            await self.room.recording.start()
        elif state is MeetingState.CLOSED:
            if closed_at is not None:
                self.recorder.session_closed(closed_at)
            self.room.recording.stop_soon()
        await self.room.outbox.broadcast(self.room, "session", self.session_payload())
        return True

    async def follow_host_floor(self, holder: dict[str, Any] | None) -> None:
        """Who holds the host's floor: a deferred room's pages are told when it changes, its stages show
        them, and (``gates_for_host``) their voice is heard here."""
        if self.deferred and holder != self.host_floor:
            self.host_floor = holder
            self.gate_all()
            await self.room.outbox.broadcast(self.room, "floor", self.floor_payload())
            for participant in list(self.room.participants.values()):
                if participant.hand_raised_at is not None and self.holds_floor(participant):
                    await self.room.moderation.raise_hand(participant, False)  # the host's queue drops it too

    def holds_floor(self, participant: Participant) -> bool:
        if self.deferred:
            return self.host_floor is not None and self.host_floor.get("person_id") == participant.person_id
        return self.holder is not None and self.holder.person_id == participant.person_id

    def remote_holder(self) -> str | None:
        """The floor holder's participant id when they are in the room through a node's pipe (a roster entry)."""
        if self.deferred:
            holder_id = self.host_floor.get("participant_id") if self.host_floor is not None else None
        else:
            holder_id = self.holder.remote_id if self.holder is not None else None
        return holder_id if holder_id in self.room.remote else None

    def heard(self, participant: Participant) -> bool:
        return not self.gated or participant.may_moderate or self.holds_floor(participant)

    def gate(self, participant: Participant) -> None:
        """Mute or unmute the participant's audio in the SFU: enforced mute and floor together."""
        muted = participant.force_muted or not self.heard(participant)
        self.room.router.set_participant_audio_muted(participant.id, muted)

    def gate_producer(self, producer: Producer) -> None:
        participant = self.room.participants.get(producer.participant_id)
        if producer.kind == "audio" and participant is not None:
            producer.set_muted(participant.force_muted or not self.heard(participant))

    def gate_all(self) -> None:
        with self.room.router.batch():  # the slots are refilled once, not once per voice
            for participant in self.room.participants.values():
                self.gate(participant)
            self.room.update_pins()

    # -- connections ------------------------------------------------------------------------
    async def on_joined(self, participant: Participant) -> None:
        holder = self.holder
        if holder is not None and holder.person_id == participant.person_id and participant.client == "room":
            holder.participant, holder.lost_at = participant, None  # back after a drop: the floor stays theirs
            self.room.update_pins()
            self._spawn(self.room.outbox.broadcast(self.room, "floor", self.floor_payload()))
        self.gate(participant)
        self.recorder.opened(participant)
        self._spawn(self._written())

    async def on_left(self, participant: Participant, status: str) -> None:
        """After the participant left the room (status: left, dropped, replaced, removed)."""
        self.recorder.ended(participant, status)
        holder = self.holder
        if holder is not None and holder.participant is participant:
            if status == "restart":  # a planned stop: the grant stays open; the next start restores it
                holder.lost_at, self._stopping = utcnow(), True
            elif status in ("dropped", "replaced"):  # a dead link: gone at its last evidence of life
                holder.lost_at = participant.gone_at or utcnow()
                self._spawn(self._end_if_not_back(holder))
            else:
                await self._end_floor("left", participant.caller)
        self._spawn(self._written())

    async def yield_remote(self, participant_id: str) -> None:
        """Someone behind a node's pipe who holds the floor here yields it (from their page at the far end)."""
        if self.holder is not None and self.holder.remote_id == participant_id:
            await self._end_floor("yielded", SERVER)

    async def on_remote_left(self, participant_id: str) -> None:
        """Someone behind a node's pipe left: the floor they held here ends."""
        if self.holder is not None and self.holder.remote_id == participant_id:
            await self._end_floor("left", SERVER)

    async def _end_if_not_back(self, holder: FloorHolder) -> None:
        """A holder who dropped keeps the floor for the meeting's grace window, then loses it."""
        meeting = await self.services.meetings.get(SERVER, self.room.meeting_id)
        await asyncio.sleep(meeting.grace_seconds)
        if self.holder is holder and holder.lost_at is not None and (
                holder.participant is None or holder.participant.id not in self.room.participants):
            # nobody of that person came back within the grace window: the grant ended when they went
            await self._end_floor("left", SERVER, at=holder.lost_at)

    async def _written(self) -> None:
        await self.recorder.flush()
        self.schedule_register_push()

    def schedule_register_push(self) -> None:
        if not self._push_due:
            self._push_due = True
            self._spawn(self._push_register())

    async def _push_register(self) -> None:
        await asyncio.sleep(REGISTER_THROTTLE_SECONDS)
        self._push_due = False
        meeting, _ = await self.services.attendance.live(self.room.meeting_id)
        register = await self.services.attendance.register_payload(meeting)
        self.quorum = register["quorum"]  # type: ignore[assignment]
        if self.roll_call is not None:
            self.roll_call["sites"] = _sites(register)
        await self.room.outbox.broadcast(self.room, "quorum", {"quorum": self.quorum})
        for moderator in self.room.moderation.moderators():
            await self.room.outbox.to(moderator, "register", register)
            if self.roll_call is not None:  # who has not answered yet, with who is connected
                await self.room.outbox.to(moderator, "roll_call", {"roll_call": self.roll_call})

    # -- session ----------------------------------------------------------------------------
    async def session_action(self, moderator: Participant, action: str) -> dict[str, Any]:
        if not moderator.may_moderate:
            raise Forbidden("only the secretariat and the chair open and close the session")
        self.refuse_if_deferred()
        if action == "open":
            meeting = await self.services.session.open(moderator.caller, self.room.meeting_id)
        else:
            if self.roll_call is not None:
                await self.roll_call_action(moderator, "close")
            meeting = await self.services.session.close(moderator.caller, self.room.meeting_id)
            if self.holder is not None:
                self._clear_holder()
                await self.room.outbox.broadcast(self.room, "floor", self.floor_payload())
            assert meeting.closed_at is not None
            self.recorder.session_closed(meeting.closed_at)
            self.room.recording.stop_soon(moderator.caller)
            self.room.moderation.agenda = agenda_payload(meeting)
            await self.room.outbox.broadcast(self.room, "agenda", self.room.moderation.agenda)
        self._set_state(meeting)
        self.gate_all()
        if action == "open":  # once the gate is shut: a voice the session does not hear is not recorded
            await self.room.recording.start(moderator.caller)
        await self.room.outbox.broadcast(self.room, "session", self.session_payload())
        self._spawn(self._written())
        return {"session": self.session_payload()}

    # -- floor ------------------------------------------------------------------------------
    async def floor_action(self, participant: Participant, payload: dict[str, Any]) -> dict[str, Any]:
        action = payload["action"]
        if self.deferred and action == "yield" and self.holds_floor(participant) and self.room.to_host is not None:
            await self.room.to_host(participant, "floor_yield", {})  # the host's floor: yielded there
            return {"floor": self.floor_payload(), "relayed": True}
        self.refuse_if_deferred()
        if action == "yield":
            if not self.holds_floor(participant):
                raise WrongState("you do not have the floor")
            await self._end_floor("yielded", participant.caller)
            return {"floor": self.floor_payload()}
        if not participant.may_moderate:
            raise Forbidden("only the secretariat and the chair give and take the floor")
        if action == "revoke":
            if self.holder is None:
                raise WrongState("nobody has the floor")
            await self._end_floor("revoked", participant.caller)
            return {"floor": self.floor_payload()}
        target_id = payload.get("participant_id")
        if target_id is None:
            raise InvalidMessage("participant_id is required to grant the floor")
        target = self.room.participants.get(target_id)
        if target is None or target.in_lobby:
            return await self._grant_remote(participant, target_id, payload.get("limit_seconds"))
        if not target.may_publish:
            raise InvalidMessage("an observer cannot take the floor")
        limit = payload.get("limit_seconds")
        principal = target.grant.principal
        grant = await self.services.floor.grant(participant.caller, self.room.meeting_id, person_id=principal.person_id,
                                                office_id=principal.office_id, limit_seconds=limit)
        self._hand_over(FloorHolder(grant.id, principal.person_id, target, time.time(), limit,
                                    holder_names(target.public())))
        if target.hand_raised_at is not None:
            await self.room.moderation.raise_hand(target, False)
        await self.room.outbox.broadcast(self.room, "floor", self.floor_payload())
        return {"floor": self.floor_payload()}

    async def _grant_remote(self, moderator: Participant, target_id: object, limit: Any) -> dict[str, Any]:
        """The floor to someone who joined at the far end of a node's pipe (this room hosts the session):
        the far end's room hears them by it (its pipe tables carry the holder), and keeps the grant's record."""
        entry = self.room.remote.get(target_id) if isinstance(target_id, str) else None
        if entry is None:
            raise WrongState("no such participant in the room")
        if set(entry.get("roles") or ()) <= {"observer"}:
            raise InvalidMessage("an observer cannot take the floor")
        await self.services.floor.grant_remote(moderator.caller, self.room.meeting_id, person_id=entry["person_id"],
                                               office_id=entry.get("office_id"), limit_seconds=limit)
        self._hand_over(FloorHolder(None, entry["person_id"], None, time.time(), limit, holder_names(entry),
                                    remote_id=entry["participant_id"]))
        await self.room.outbox.broadcast(self.room, "floor", self.floor_payload())
        return {"floor": self.floor_payload()}

    def _hand_over(self, holder: FloorHolder) -> None:
        """``holder`` has the floor now: the previous holder's voice and the new one's are gated again."""
        previous = self._clear_holder()
        self.holder = holder
        if holder.limit_seconds is not None:
            holder.timer = asyncio.ensure_future(self._expire(holder))
        with self.room.router.batch():
            if previous is not None:
                for p in self._connections(previous.person_id):
                    self.gate(p)
            for p in self._connections(holder.person_id):
                self.gate(p)
            self.room.update_pins()

    def _connections(self, person_id: int) -> list[Participant]:
        return [p for p in self.room.participants.values() if p.person_id == person_id]

    def _clear_holder(self) -> FloorHolder | None:
        holder, self.holder = self.holder, None
        if holder is not None and holder.timer is not None and holder.timer is not asyncio.current_task():
            holder.timer.cancel()
        return holder

    async def _expire(self, holder: FloorHolder) -> None:
        assert holder.limit_seconds is not None
        await asyncio.sleep(max(0.0, holder.granted_at + holder.limit_seconds - time.time()))  # restored: less
        if self.holder is holder:
            await self._end_floor("expired", SERVER)

    async def _end_floor(self, reason: str, caller: Caller, at: dt.datetime | None = None) -> None:
        holder = self._clear_holder()
        if holder is None:
            return
        with self.room.router.batch():
            for p in self._connections(holder.person_id):
                self.gate(p)
            self.room.update_pins()
        await self.room.outbox.broadcast(self.room, "floor", {**self.floor_payload(), "ended": reason})
        try:
            if holder.grant_id is None:
                await self.services.floor.end_remote(caller, self.room.meeting_id, holder.person_id, reason)
            else:
                await self.services.floor.end(caller, self.room.meeting_id, holder.grant_id, reason, at=at)
        except Exception:  # noqa: BLE001 - the floor has ended in the SFU whatever the record says
            log.exception("could not record the end of a floor grant",
                          extra={"event": "floor.record_failed", "meeting_id": self.room.meeting_id})

    # -- roll call --------------------------------------------------------------------------
    async def roll_call_action(self, participant: Participant, action: str) -> dict[str, Any]:
        calls = self.services.roll_calls
        meeting_id = self.room.meeting_id
        if action == "answer":
            if self.roll_call is None:
                raise WrongState("no roll call is running")
            state = await calls.answer(participant.caller, meeting_id, self.roll_call["id"])
        else:
            if not participant.may_moderate:
                raise Forbidden("only the secretariat and the chair call the roll")
            state = await (calls.start if action == "start" else calls.close)(participant.caller, meeting_id)
        sites = self.roll_call.get("sites") if self.roll_call else None
        self.roll_call = _roll_call(state) if state.open else None
        if self.roll_call is not None:
            self.roll_call["sites"] = sites
            if action == "start" or sites is None:
                self.schedule_register_push()
        await self._broadcast_roll_call()
        return {"roll_call": self._roll_call_for(participant) if state.open else {**_roll_call(state)}}

    # -- register ---------------------------------------------------------------------------
    async def register(self, participant: Participant) -> dict[str, Any]:
        await self.recorder.flush()
        return {"register": await self.services.attendance.register(participant.caller, self.room.meeting_id)}

    async def excuse(self, participant: Participant, payload: dict[str, Any]) -> dict[str, Any]:
        row = await self.services.attendance.excuse(participant.caller, self.room.meeting_id,
                                                    office_id=payload.get("office_id"),
                                                    person_id=payload.get("person_id"), reason=payload["reason"])
        self.schedule_register_push()
        return {"excuse_id": row.id}


def _roll_call(state: Any) -> dict[str, Any]:
    return {"id": state.id, "open": state.open, "started_at": state.started_at, "answered": sorted(state.answered)}


def _sites(register: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"office_id": s["office_id"], "name": s["name"], "name_km": s["name_km"], "present_now": s["present_now"]}
            for s in register["sites"] if s["invited"]]


class FloorHandlers:
    """socket.io handlers, mixed into the namespace (``MeetingNamespace._joined`` gives the room)."""

    def _joined(self, connection: Any, *, lobby_ok: bool = False) -> tuple[Participant, Room]:
        raise NotImplementedError

    async def handle_session(self, sid: str, connection: Any, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.floor.session_action(participant, payload["action"])

    async def handle_floor(self, sid: str, connection: Any, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.floor.floor_action(participant, payload)

    async def handle_roll_call(self, sid: str, connection: Any, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        return await room.floor.roll_call_action(participant, payload["action"])

    async def handle_excuse(self, sid: str, connection: Any, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        if (payload.get("office_id") is None) == (payload.get("person_id") is None):
            raise InvalidMessage("excuse either office_id or person_id")
        return await room.floor.excuse(participant, payload)

    async def handle_recording(self, sid: str, connection: Any, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        if not participant.may_moderate:
            raise Forbidden("only the secretariat and the chair pause and resume the recording")
        if payload["action"] == "pause":
            await room.recording.pause(participant.caller, payload.get("reason") or "in camera")
        else:
            await room.recording.resume(participant.caller)
        return {"recording": room.recording.payload()}

    async def handle_register(self, sid: str, connection: Any, payload: dict[str, Any]) -> dict[str, Any]:
        participant, room = self._joined(connection)
        if not participant.may_moderate:
            raise Forbidden("only the secretariat and the chair see the live register")
        return await room.floor.register(participant)

