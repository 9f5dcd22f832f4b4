"""Evidence of life per connection, and the sweep that ends a dead connection at its last evidence.

A connection shows it is alive by anything it sends: every engine.io packet (the pong that answers the
server's ping every ``ping_interval_seconds``, and every socket.io event), and every RTP or RTCP packet
on its WebRTC transports (a publisher's media, a subscriber's receiver reports; the transport stores the
arrival time, read here only when needed). Engine.io's own ping timeout would notice a silent link only
25 + 20 s later and end its attendance interval then, crediting the silence as presence.

* The sweep (every ``SWEEP_SECONDS``) removes a joined participant silent for more than
  ``dead_after_seconds`` as "dropped", with its interval ending at the last evidence (not at the
  detection), and closes its socket; the page and the bots reconnect by themselves.
* Any other drop (engine.io's timeout, a transport error) also ends at the last evidence when the
  connection had already been silent longer than a ping cycle; a drop right after a sign of life (a
  closed tab, a reset connection) ends at the drop.
* The attendance heartbeat writes :func:`seen_at` as ``last_seen_at``: "now" while the evidence is as
  fresh as the ping cycle promises, else the last evidence. A crash then loses at most one heartbeat
  period, and never credits a link that was already silent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from meetings.models.base import utcnow

if TYPE_CHECKING:
    from signaling.participant import Participant
    from signaling.room import Room

log = logging.getLogger("signaling.liveness")

#: How often the sweep looks for silent participants (seconds).
SWEEP_SECONDS = 0.5
#: A sweep that wakes this much later than due skips its round (the loop was blocked, not the links).
STALL_SECONDS = 1.0


class Evidence:
    """When a connection last showed life (``time.monotonic()`` seconds), apart from its media."""

    __slots__ = ("fresh_seconds", "signal_at")

    def __init__(self, fresh_seconds: float = 5.0) -> None:
        #: Evidence younger than this counts as "alive now" (a ping cycle and a round trip).
        self.fresh_seconds = fresh_seconds
        self.signal_at = time.monotonic()

    def heard(self) -> None:
        self.signal_at = time.monotonic()


def last_alive(participant: Participant) -> float:
    """The latest evidence of life of a participant's connection (monotonic seconds)."""
    latest = participant.evidence.signal_at
    for transport in (participant.send, participant.recv):
        if transport is not None and transport.stats.last_packet_ms:
            latest = max(latest, transport.stats.last_packet_ms / 1000)
    return latest


def wall_clock(monotonic: float, now: dt.datetime | None = None) -> dt.datetime:
    """The UTC time of a past ``time.monotonic()`` reading."""
    return (now or utcnow()) - dt.timedelta(seconds=max(0.0, time.monotonic() - monotonic))


def silent_for(participant: Participant) -> float:
    return max(0.0, time.monotonic() - last_alive(participant))


def seen_at(participant: Participant, now: dt.datetime | None = None) -> dt.datetime:
    """What the attendance heartbeat writes as ``last_seen_at``."""
    now = now or utcnow()
    last = last_alive(participant)
    if time.monotonic() - last <= participant.evidence.fresh_seconds:
        return now
    return wall_clock(last, now)


def end_of_drop(participant: Participant) -> dt.datetime | None:
    """For a connection that dropped: its last evidence if it had been silent longer than fresh, else
    None (it ends now)."""
    last = last_alive(participant)
    if time.monotonic() - last > participant.evidence.fresh_seconds:
        return wall_clock(last)
    return None


def watch_engineio(eio_socket: Any, evidence: Evidence) -> bool:
    """Count every engine.io packet the client sends (pongs included) as evidence of life.

    python-engineio (4.x) hands each received packet to ``AsyncSocket.receive``; there is no event for a
    pong, so that method is wrapped on this one socket object. False when the socket is not there or
    has no such method (then socket.io events and media are the only evidence)."""
    receive = getattr(eio_socket, "receive", None)
    if receive is None or getattr(receive, "_cabinet_evidence", None) is not None:
        return False

    async def receive_with_evidence(pkt: Any) -> Any:
        evidence.heard()
        return await receive(pkt)

    receive_with_evidence._cabinet_evidence = evidence  # type: ignore[attr-defined]
    eio_socket.receive = receive_with_evidence
    return True


class LivenessSweep:
    """Ends joined participants whose connection went silent. ``rooms()`` gives the live rooms;
    ``on_dead(room, participant)`` removes one (its ``gone_at`` already set) and closes its socket."""

    def __init__(self, dead_after_seconds: float, rooms: Callable[[], list[Room]],
                 on_dead: Callable[[Room, Participant], Awaitable[None]], period: float = SWEEP_SECONDS) -> None:
        self.dead_after = dead_after_seconds
        self.period = period
        self._rooms = rooms
        self._on_dead = on_dead
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            due = time.monotonic() + self.period
            await asyncio.sleep(self.period)
            if time.monotonic() - due > STALL_SECONDS:
                # The event loop itself was held up: what arrived meanwhile is still waiting to be read, so
                # silence now proves nothing. Look again once the loop has caught up.
                log.warning("liveness sweep skipped: the event loop was held up", extra={
                    "event": "signaling.liveness_stalled", "seconds": round(time.monotonic() - due, 2)})
                continue
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the sweep must go on
                log.exception("liveness sweep failed", extra={"event": "signaling.liveness_failed"})

    async def sweep(self) -> int:
        """Remove every silent participant; returns how many."""
        dead = 0
        for room in self._rooms():
            for participant in list(room.participants.values()):
                last = last_alive(participant)
                silent = time.monotonic() - last
                if silent <= self.dead_after or participant.gone_at is not None or participant.via is not None:
                    continue  # (the pipe of a participant behind one answers for them: provincial_nodes/)
                participant.gone_at = wall_clock(last)
                dead += 1
                log.info("participant silent: dropped", extra={
                    "event": "signaling.silent", "meeting_id": room.meeting_id, "participant_id": participant.id,
                    "silent_seconds": round(silent, 1), "last_evidence": participant.gone_at.isoformat()})
                await self._on_dead(room, participant)
        return dead
