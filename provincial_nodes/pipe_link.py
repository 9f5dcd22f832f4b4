"""A node's pipe in the rooms, on either end: which meetings it carries, their people and tracks, and
which tracks cross (DESIGN.md "Pipes and nodes").

Both ends run a :class:`PipeLink` per connection of the control channel (the pipe's keys renew with
it): one :class:`~media.pipe.Pipe` over one :class:`~media.pipe_transport.PipeTransport`, and, per
meeting both ends carry, a :class:`MeetingShare`. Each end sends the other its *table* of the meeting,
whole, whenever it changes: the participants and tracks of its room that did not come through this
pipe (the centre sends a node its own people and every other node's; a node sends its local people).
The far end keeps a roster entry per participant and a mirror producer per track in its room, so its
local slots consume them like any producer, and answers with its *wants*: the mirrors something
consumes (a slot, a recorder, another node's pipe) and every voice. The near end taps what is wanted:
every wanted camera and, of the voices, the floor holder's and the loudest (:data:`MAX_PIPED_VOICES`).
One copy of each stream crosses whatever the number of viewers beyond, and nothing nobody watches.

A node offers the meetings it has rooms for; the centre never offers one. Each frame is checked whole
(provincial_nodes/pipe_frames.py) before anything is applied. What the far end says is
checked by the end's :class:`PipeGate` (at the centre: the meeting is the node's office's, the people
are its people, meetings/services/nodes.py); a refusal is answered ``pipe_refused`` and changes nothing.

Frames on the control channel (JSON objects):
  * ``pipe_table`` {meeting_id, participants: [roster entry], tracks: [PipedTrack + paused]}
  * ``pipe_wants`` {meeting_id, producer_ids: [...]}
  * ``pipe_leave`` {meeting_id}: the sender's room closed; the far end drops what it mirrored
  * ``pipe_refused`` {meeting_id, message}
  * ``pipe_departed`` {meeting_id, departed: {participant id: ISO time}} (node to centre, first after a
    reconnection): when the node's people left during the cut, so their attendance ends then, not at
    the reconnection
  * ``pipe_link`` {downlink_kbps} (node to centre, first on each link): the node's configured downlink
    (0: no cap); the centre's sending end thins what crosses to fit it (media/pipe_budget.py), as the
    node's does to its own ``uplink_kbps``. A value out of range is refused and changes nothing.

Each tick both sending ends set each piped camera's temporal layers within their working limit
(:meth:`media.pipe.PipeSender.rebalance`): audio, then every camera's TL0, then the upper layers, the
floor holder's and the latest speakers' cameras first.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from media import MediaError, Producer
from media.pipe import Pipe, PipedTrack, PipeError
from media.pipe_budget import MAX_CAP_KBPS, MIN_CAP_KBPS, valid_cap
from media.pipe_stream import StreamWriter
from media.pipe_transport import PipeTransport
from .pipe_frames import (FLOOR_FIELDS, HostSession, PipeRefused, departures_of, entries_of, joined_iso,
                          meeting_id_of, session_of)

if TYPE_CHECKING:
    from signaling.participant import Participant
    from signaling.room import Room

log = logging.getLogger("provincial_nodes.pipe")

#: Voices that cross per meeting: the floor holder's and the most recent speakers'.
MAX_PIPED_VOICES = 4
#: How often wants and taps are brought up to date.
TICK_SECONDS = 0.1
#: How often (in ticks) the table is compared with the last one sent.
TABLE_EVERY_TICKS = 3
#: What a room's messages to a participant behind the pipe carry across (see :meth:`PipeLink.deliver`): a
#: removal, and the votes of the session (the node's people vote on the node's pages).
RELAYED_EVENTS = frozenset({"removed", "vote", "vote_refused"})

SendFrame = Callable[[dict[str, Any]], Awaitable[None]]


class PipeGate(Protocol):
    """What one end checks of the other's frames, and how the far end's people enter its rooms."""

    async def room(self, meeting_id: int) -> Room | None:
        """The room a far-end table of ``meeting_id`` goes into (None: none here, ignore it); raises
        PipeRefused when the far end may not carry that meeting."""

    async def people(self, room: Room, entries: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """Put the far end's participants (all of them: those missing have left) in ``room``; the ids of
        those in the meeting now, and of those waiting in its lobby (their tracks wait too, and the table
        is applied again when one of them is let in or gone). Raises PipeRefused, changing nothing."""

    async def release(self, room: Room, status: str) -> None:
        """The pipe no longer carries ``room``: its people leave it (``left``; ``dropped``), or wait for the
        next link of the same far end (``parked``: a cut)."""

    async def event(self, room: Room, participant_id: str, event: str, data: dict[str, Any]) -> None:
        """The far end's room sent one of this end's participants ``event``; raises PipeRefused."""

    async def follow(self, room: Room, session: HostSession) -> None:
        """The far end's session state (in its tables, from the end whose room does not defer to a host):
        a room here that defers to that host follows it."""

    def alive(self, room: Room) -> None:
        """The pipe is up: its people in ``room`` are alive (each tick)."""

    async def departed(self, meeting_id: int, departures: dict[str, dt.datetime]) -> None:
        """The far end says when its people left ``meeting_id`` while the pipe was cut; raises PipeRefused."""


@dataclass(frozen=True)
class PipeSummary:
    """What the console shows of a pipe now."""

    meetings: int
    people: int
    #: Streams this end sends (tapped), and streams it asks the far end for (its wants).
    streams_out: int
    streams_in: int
    kbps_out: float
    kbps_in: float
    #: Loss the far end reports of what this end sends, and loss of what this end receives (percent).
    loss_out_percent: float
    loss_in_percent: float
    retransmitted: int
    retransmit_misses: int
    keyframe_requests: int
    refusals: int
    #: ``udp``, or ``stream`` (the control channel carries the packets: UDP is blocked).
    carrier: str = "udp"
    #: What this end sends is thinned to: the link's configured cap and the working limit under it that
    #: the far end's loss moves (kbit/s; 0 / None: none), each piped camera's target temporal layer (by
    #: producer id; 2: all), the packets thinned, and whether even every camera's TL0 is above the limit.
    cap_kbps: int = 0
    limit_kbps: int | None = None
    layers: dict[str, int] = field(default_factory=dict)
    thinned: int = 0
    over_limit: bool = False


@dataclass
class MeetingShare:
    """One meeting both ends carry."""

    room: Room
    #: The far end's tracks mirrored here, by producer id.
    mirrors: dict[str, Producer] = field(default_factory=dict)
    #: What the far end wants of this end's producers, and what is tapped for it now.
    far_wants: frozenset[str] = frozenset()
    tapped: set[str] = field(default_factory=set)
    sent_table: str = ""
    sent_wants: frozenset[str] | None = None
    #: The far end refused this meeting: offer it no more on this connection.
    refused: bool = False
    #: The far end's last table, while some of its people wait in a lobby: applied again once one of them
    #: (``waiting_ids``) is no longer waiting (let in, or gone).
    waiting: tuple[list[dict[str, Any]], list[PipedTrack], dict[str, bool]] | None = None
    waiting_ids: frozenset[str] = frozenset()


def pick_voices(voices: Iterable[Producer], speaker_order: list[str], floor_holder: str | None) -> set[str]:
    """Of the wanted voices, those that cross: the floor holder's, then the most recent speakers', then
    any other, those being sent before those that are not, at most :data:`MAX_PIPED_VOICES`."""
    rank = {pid: i for i, pid in enumerate(speaker_order)}
    ordered = sorted(voices, key=lambda p: (not p.forwarding, p.participant_id != floor_holder,
                                            rank.get(p.participant_id, len(rank))))
    return {p.id for p in ordered[:MAX_PIPED_VOICES]}


class PipeLink:
    """One end of a node's pipe for one connection of its control channel (see the module docstring)."""

    def __init__(self, role: str, gate: PipeGate, send_frame: SendFrame, *, tag: str, label: str = "") -> None:
        self.role = role
        self.tag = tag
        #: What rooms show of the people it carries (``via``): the node's office, or "centre".
        self.label = label or tag
        #: The far end this link is one connection of (the node's id at the centre): a later link of the
        #: same owner takes back the people a cut left waiting.
        self.owner: int | None = None
        self._gate = gate
        self._send_frame = send_frame
        self.transport: PipeTransport | None = None
        self.pipe = Pipe(self._send_datagram, tag=tag)
        self.shares: dict[int, MeetingShare] = {}
        self.refusals = 0
        self.closed = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._metered = (0.0, 0, 0)
        self.kbps_out = self.kbps_in = 0.0

    def __repr__(self) -> str:
        return f"PipeLink({self.role}, {self.tag}, meetings={sorted(self.shares)})"

    def start(self, transport: PipeTransport) -> None:
        self.transport = transport
        self._task = asyncio.ensure_future(self._run())

    def ride_stream(self, send_bytes: Callable[[bytes], Awaitable[None]]) -> None:
        """UDP does not get through: the packets ride the control channel (one binary frame each)."""
        if self.transport is not None:
            self.transport.use_stream(StreamWriter(send_bytes))

    def _send_datagram(self, data: bytes) -> bool:
        return self.transport is not None and self.transport.send(data)

    # -- the meetings carried -------------------------------------------------------------------
    def share(self, room: Room) -> None:
        """Offer the far end this room's meeting (a node, for each of its rooms)."""
        if not self.closed and room.meeting_id not in self.shares:
            self.shares[room.meeting_id] = MeetingShare(room)

    async def unshare(self, meeting_id: int, *, tell: bool = True, status: str = "left") -> None:
        share = self.shares.pop(meeting_id, None)
        if share is None:
            return
        for producer_id in share.tapped:
            self.pipe.sender.detach(producer_id)
        for mirror in list(share.mirrors.values()):
            mirror.close()
        await self._gate.release(share.room, status)
        if tell and not self.closed:
            await self._send({"type": "pipe_leave", "meeting_id": meeting_id})

    async def close(self, status: str = "dropped") -> None:
        """End the link; its people leave the rooms with ``status`` (``parked``: they wait for the next link)."""
        if self.closed:
            return
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for meeting_id in list(self.shares):
            await self.unshare(meeting_id, tell=False, status=status)
        for task in list(self._tasks):
            task.cancel()
        self.pipe.close()
        if self.transport is not None:
            self.transport.close()

    # -- frames from the far end ------------------------------------------------------------------
    async def handle_frame(self, frame: dict[str, Any]) -> None:
        """A ``pipe_*`` frame; a refused one is answered ``pipe_refused`` and changes nothing."""
        kind = frame.get("type")
        meeting_id = frame.get("meeting_id")
        try:
            async with self._lock:
                if kind == "pipe_table":
                    await self._table(meeting_id_of(frame), frame)
                elif kind == "pipe_wants":
                    self._wants(meeting_id_of(frame), frame)
                elif kind == "pipe_leave":
                    await self.unshare(meeting_id_of(frame), tell=False)
                elif kind == "pipe_refused":
                    self._refused(meeting_id_of(frame), frame)
                elif kind == "pipe_event":
                    await self._event(meeting_id_of(frame), frame)
                elif kind == "pipe_departed":
                    await self._gate.departed(meeting_id_of(frame), departures_of(frame))
                elif kind == "pipe_link":
                    self._link(frame)
                else:
                    raise PipeRefused(f"unknown pipe frame {kind!r}")
        except (PipeRefused, PipeError) as exc:
            self.refusals += 1
            log.info("pipe frame refused: %s", exc, extra={"event": "pipe.refused", "pipe": self.tag})
            if kind != "pipe_refused":
                await self._send({"type": "pipe_refused", "meeting_id": meeting_id if isinstance(meeting_id, int)
                                  else None, "message": str(exc)})

    def _link(self, frame: dict[str, Any]) -> None:
        """The far end's configured downlink: what this end sends fits it."""
        kbps = frame.get("downlink_kbps")
        if not valid_cap(kbps):
            raise PipeRefused(f"downlink_kbps must be 0 (no cap) or an integer {MIN_CAP_KBPS}..{MAX_CAP_KBPS}")
        self.pipe.sender.set_cap(kbps)  # type: ignore[arg-type]
        log.info("the far end's downlink is %s kbit/s", kbps or "not capped",
                 extra={"event": "pipe.link_cap", "pipe": self.tag, "kbps": kbps})

    def rebalance(self) -> None:
        """Each piped camera's layers within the link's working limit (each tick): the upper layers go to
        the floor holders' cameras first, then the most recent speakers'."""
        rank: dict[str, int] = {}
        for share in self.shares.values():
            router = share.room.router
            order = ([router.floor_holder] if router.floor_holder else []) + list(router.speaker_order)
            for i, participant_id in enumerate(order):
                rank[participant_id] = min(i, rank.get(participant_id, i))
        self.pipe.sender.rebalance(rank)

    async def _table(self, meeting_id: int, frame: dict[str, Any]) -> None:
        participants = [e for e in entries_of(frame, "participants")]
        if not all(isinstance(e, dict) for e in participants):
            raise PipeRefused("a participant is an object")
        described = entries_of(frame, "tracks")
        tracks = [PipedTrack.from_dict(t) for t in described]
        paused = {t.producer_id: bool(d.get("paused")) for t, d in zip(tracks, described, strict=True)}
        session = session_of(frame)
        share = self.shares.get(meeting_id)
        room = share.room if share is not None else await self._gate.room(meeting_id)
        if room is None:
            return
        try:
            await self._apply_table(meeting_id, room, share, participants, tracks, paused)
        except BaseException:
            if share is None:  # the room was opened for this table alone
                await self._gate.release(room, "left")
            raise
        if session is not None:
            await self._gate.follow(room, session)

    async def _apply_table(self, meeting_id: int, room: Room, share: MeetingShare | None,
                           participants: list[dict[str, Any]], tracks: list[PipedTrack],
                           paused: dict[str, bool]) -> None:
        claimed = {e.get("participant_id") for e in participants}
        for track in tracks:
            if track.participant_id not in claimed:
                raise PipeRefused(f"track {track.producer_id} is of no participant in the table")
            known = room.router.producers.get(track.producer_id)
            if known is not None and (share is None or share.mirrors.get(track.producer_id) is not known):
                raise PipeRefused(f"producer {track.producer_id} is already in the meeting")
        present, waiting = await self._gate.people(room, participants)
        if share is None:
            share = self.shares[meeting_id] = MeetingShare(room)
        share.waiting = (participants, tracks, paused) if waiting else None
        share.waiting_ids = frozenset(waiting)
        tracks = [t for t in tracks if t.participant_id in present]
        wanted = {t.producer_id for t in tracks}
        for producer_id in [p for p in share.mirrors if p not in wanted]:
            share.mirrors.pop(producer_id).close()
        for track in tracks:
            mirror = share.mirrors.get(track.producer_id)
            if mirror is None:
                try:
                    mirror = self.pipe.receiver.add(track, into=room.router.add_producer)
                except (PipeError, MediaError) as exc:  # an SSRC another meeting's track has: skip this one
                    log.warning("cannot mirror %s: %s", track.producer_id, exc, extra={"event": "pipe.mirror_failed"})
                    continue
                share.mirrors[track.producer_id] = mirror
            if paused[track.producer_id]:
                mirror.pause()
            else:
                mirror.resume()

    def _wants(self, meeting_id: int, frame: dict[str, Any]) -> None:
        share = self.shares.get(meeting_id)
        if share is None:
            return  # a meeting just left: its wants are moot
        ids = entries_of(frame, "producer_ids")
        if not all(isinstance(i, str) and 0 < len(i) <= 128 for i in ids):
            raise PipeRefused("producer_ids are strings")
        share.far_wants = frozenset(ids)
        self._retap(share)

    async def _event(self, meeting_id: int, frame: dict[str, Any]) -> None:
        share = self.shares.get(meeting_id)
        participant_id, event, data = frame.get("participant_id"), frame.get("event"), frame.get("data")
        if not isinstance(participant_id, str) or not isinstance(event, str) or not isinstance(data, dict):
            raise PipeRefused("an event names a participant_id, an event and its data")
        if share is not None:
            await self._gate.event(share.room, participant_id, event, data)

    # -- a relay for the far end's people in this end's rooms (signaling/participant.py Relay) ----------
    def deliver(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        """What this end's room sends a participant behind the pipe. Only what the far end acts on
        crosses (a removal); the rest concerns the page they would have at this end, which they have not."""
        if event in RELAYED_EVENTS:
            self._spawn(self._send({"type": "pipe_event", "meeting_id": participant.grant.meeting.meeting_id,
                                    "participant_id": participant.id, "event": event, "data": data}))

    async def relay_up(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        """A request of one of this end's people to the far end's room, which runs the session (a ballot)."""
        await self._send({"type": "pipe_event", "meeting_id": participant.grant.meeting.meeting_id,
                          "participant_id": participant.id, "event": event, "data": data})

    def drop(self, participant: Participant) -> None:
        """This end's room let go of them (removed, replaced): they leave when the far end's table says so."""

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refused(self, meeting_id: int, frame: dict[str, Any]) -> None:
        log.warning("the far end refused meeting %s: %s", meeting_id, frame.get("message"),
                    extra={"event": "pipe.meeting_refused", "meeting_id": meeting_id})
        share = self.shares.get(meeting_id)
        if share is not None:
            share.refused = True

    # -- this end's side --------------------------------------------------------------------------
    def _mine(self, producer: Producer) -> bool:
        return producer.app_data.get("pipe") == self.tag

    def table(self, share: MeetingShare) -> dict[str, Any]:
        room = share.room
        recorder = room.floor.recorder.by_participant
        participants = [dict(p.public(), quality={}, joined_at=joined_iso(recorder.get(p.id)))
                        for p in room.participants.values() if p.via is not self]
        participants += [e for pid, e in room.remote.items() if room.remote_via(pid) is not self]
        tracks = [dict(PipedTrack.of(p).to_dict(), paused=p.paused) for p in room.router.producers.values()
                  if not p.closed and p.ssrc is not None and not self._mine(p)]
        frame = {"type": "pipe_table", "meeting_id": room.meeting_id, "participants": participants, "tracks": tracks}
        if not room.floor.deferred:  # this end hosts the session: the far end's room follows its state
            holder = room.floor.floor_payload()["holder"]
            frame["session"] = {**{k: v for k, v in room.floor.session_payload().items() if k != "run_by_host"},
                                "floor": {k: holder.get(k) for k in FLOOR_FIELDS} if holder else None}
        return frame

    @staticmethod
    def wants(share: MeetingShare) -> frozenset[str]:
        """The mirrors something here consumes, and every voice (the far end picks the loudest)."""
        return frozenset(pid for pid, m in share.mirrors.items()
                         if not m.closed and (m.kind == "audio" or m.sinks))

    def _retap(self, share: MeetingShare) -> None:
        router = share.room.router
        ours = {pid: p for pid, p in router.producers.items()
                if pid in share.far_wants and not p.closed and p.ssrc is not None and not self._mine(p)}
        desired = {pid for pid, p in ours.items() if p.kind == "video"}
        desired |= pick_voices((p for p in ours.values() if p.kind == "audio"),
                               router.speaker_order, router.floor_holder)
        for producer_id in share.tapped - desired:
            self.pipe.sender.detach(producer_id)
        for producer_id in desired - share.tapped:
            self.pipe.sender.attach(ours[producer_id])
        share.tapped = desired

    def last_heard(self) -> dt.datetime | None:
        """When the far end's last authenticated packet arrived (media or keep-alive: its last sign of life,
        which a cut precedes by the control channel's heartbeat timeout); None if it never sent one."""
        transport = self.transport
        if transport is None or not transport.last_received:
            return None
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max(0.0, time.monotonic() - transport.last_received))

    def meetings_with_people(self) -> list[int]:
        """The meetings in which this end's room has people of the far end (whose tracks come through here)."""
        return sorted(mid for mid, share in self.shares.items()
                      if any(p.via is self for p in share.room.participants.values()))

    def summary(self) -> PipeSummary:
        sent, received = self.pipe.sender.stats, self.pipe.receiver.stats
        people = sum(1 for share in self.shares.values() for p in share.room.participants.values() if p.via is self)
        people += sum(1 for share in self.shares.values() for pid in share.room.remote
                      if share.room.remote_via(pid) is self)
        return PipeSummary(
            meetings=len(self.shares), people=people, streams_out=len(self.pipe.sender.taps),
            streams_in=sum(len(share.sent_wants or ()) for share in self.shares.values()),
            kbps_out=round(self.kbps_out, 1),
            kbps_in=round(self.kbps_in, 1),
            loss_out_percent=round(max(sent.remote_loss.values(), default=0) * 100 / 256, 1),
            loss_in_percent=round(received.received_loss * 100 / 256, 1), retransmitted=sent.retransmitted,
            retransmit_misses=sent.retransmit_misses, keyframe_requests=sent.keyframe_requests,
            refusals=self.refusals, carrier=self.transport.carrier if self.transport is not None else "udp",
            cap_kbps=sent.cap_kbps, limit_kbps=sent.limit_kbps, layers=dict(sent.target_layers),
            thinned=sent.layer_drops, over_limit=sent.over_limit)

    def _meter(self) -> None:
        now = asyncio.get_running_loop().time()
        then, sent, received = self._metered
        out, into = self.pipe.sender.stats.bytes_sent, self.pipe.receiver.stats.bytes_received
        if then:
            self.kbps_out = (out - sent) * 8 / 1000 / (now - then)
            self.kbps_in = (into - received) * 8 / 1000 / (now - then)
        self._metered = (now, out, into)

    async def _run(self) -> None:
        ticks = 0
        while not self.closed:
            await asyncio.sleep(TICK_SECONDS)
            ticks += 1
            if ticks % 10 == 0:
                self._meter()
            async with self._lock:
                for share in list(self.shares.values()):
                    if share.refused or self.shares.get(share.room.meeting_id) is not share:
                        continue
                    self._gate.alive(share.room)
                    try:
                        await self._bring_up_to_date(share, table=ticks % TABLE_EVERY_TICKS == 1)
                    except (PipeError, MediaError) as exc:  # one meeting's trouble must not stop the others
                        log.warning("pipe tick failed for meeting %s: %s", share.room.meeting_id, exc,
                                    extra={"event": "pipe.tick_failed", "pipe": self.tag})
                self.rebalance()

    async def _bring_up_to_date(self, share: MeetingShare, *, table: bool) -> None:
        if share.waiting is not None and not share.waiting_ids <= share.room.moderation.lobby.keys():
            # someone was let in (or left) since: their tracks follow
            try:
                await self._apply_table(share.room.meeting_id, share.room, share, *share.waiting)
            except PipeRefused as exc:
                share.waiting = None
                log.info("a waiting table no longer applies: %s", exc, extra={"event": "pipe.refused"})
        if table or not share.sent_table:
            frame = self.table(share)
            text = json.dumps(frame, sort_keys=True)
            if text != share.sent_table:
                share.sent_table = text
                await self._send(frame)
        wants = self.wants(share)
        if wants != share.sent_wants:
            share.sent_wants = wants
            await self._send({"type": "pipe_wants", "meeting_id": share.room.meeting_id,
                              "producer_ids": sorted(wants)})
        self._retap(share)

    async def _send(self, frame: dict[str, Any]) -> None:
        try:
            await self._send_frame(frame)
        except (ConnectionError, RuntimeError) as exc:  # the channel is closing: the link closes with it
            log.info("pipe frame not sent: %s", exc, extra={"event": "pipe.send_failed", "pipe": self.tag})
