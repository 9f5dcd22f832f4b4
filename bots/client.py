"""Signaling client: Cabinet's socket.io protocol, with no media inside.

Every client event is emitted with an acknowledgement; ``{"ok": false, "error": {...}}`` becomes
a :class:`SignalingError`. The media halves (:class:`bots.publisher.Publisher`,
:class:`bots.subscriber.Subscriber`) are attached through callbacks, so they stay usable without
any server (see :mod:`bots.inprocess`).

One client is one connection: python-socketio's own reconnection stays off (``reconnection=False``)
because every connection needs a new single-use join token; :class:`bots.bot.Bot` reconnects with
a new client. A connection the bot did not close itself is reported once through ``on_lost``
(reason, code): a disconnect, the server's ``closing {code, message}``, or ``removed``.

Receiving (slots, issue 11): :meth:`SignalingClient.subscribe` asks for ``videos`` / ``audios`` slots,
answers the one offer of the acknowledgement through ``on_offer`` and sends the answer (revision 1);
the server never sends another offer. Its ``slot`` events go to ``on_slot`` (the subscriber keeps
each slot's timeline) and to :attr:`SignalingClient.slot_map`. An ``offer`` event is not part of the
protocol any more: it is counted (``offers_after_join``) and recorded as an error, never answered.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
import socketio.exceptions

from .errors import SignalingError

logger = logging.getLogger(__name__)

#: Answers the receiving connection's one offer: (sdp, slots) -> answer sdp.
OfferHandler = Callable[[str, list[dict[str, Any]]], Awaitable[str]]
#: Told every ``slot`` event (the subscriber applies it to its slot's timeline).
SlotHandler = Callable[[dict[str, Any]], Any]
#: Told once when the connection is lost without the bot closing it: (reason, server code or None).
LostHandler = Callable[["SignalingClient", str, str | None], None]

SERVER_EVENTS = (
    "participant_joined",
    "participant_left",
    "track_added",
    "track_removed",
    "dominant_speaker",
    "mute_changed",
    "spotlight",
    "session",
    "floor",
    "recording",
    "hands",
    "vote",
    "vote_refused",
)


def refusal(data: Any) -> tuple[str, str]:
    """(code, message) of a connect_error: ``{"code", "message"}``, or python-socketio's
    ``ConnectionRefusedError(message, {"code": ...})`` shape ``{"message", "data": {"code"}}``."""
    if not isinstance(data, dict):
        return ("refused", str(data)) if data else ("", "")
    nested = data.get("data")
    code = data.get("code") or (nested.get("code") if isinstance(nested, dict) else None) or "refused"
    return str(code), str(data.get("message", ""))


class SignalingClient:
    def __init__(self, url: str, token: str, *, timeout: float = 15.0, ssl_verify: bool = True) -> None:
        self.url = url
        self.timeout = timeout
        self.joined: dict[str, Any] | None = None
        self.participant_id: str | None = None
        self.dominant_speaker: str | None = None
        self.roster: dict[str, dict[str, Any]] = {}
        self.tracks: dict[str, dict[str, Any]] = {}
        self.events: Counter[str] = Counter()
        self.errors: list[str] = []
        self.on_offer: OfferHandler | None = None
        self.on_slot: SlotHandler | None = None
        #: The slots of the subscribe acknowledgement, in m-line order.
        self.slots: list[dict[str, Any]] = []
        #: Who each slot carries (participant id), from the ``slot`` events applied in sequence order.
        self.slot_map: dict[str, str | None] = {}
        self._slot_sequences: dict[str, int] = {}
        self.spotlight: str | None = None
        #: Server ``offer`` events after the join: the slots protocol has none (each is an error).
        self.offers_after_join = 0
        self.listeners: list[Callable[[str, Any], None]] = []
        self.on_lost: LostHandler | None = None
        #: Why the connection was lost (None while it is up, or when the bot closed it).
        self.lost: str | None = None
        #: The code of the server's ``closing`` (or "removed"), if it said why.
        self.lost_code: str | None = None
        self._closed_by_us = False
        self.token = token
        self._sio = socketio.AsyncClient(reconnection=False, ssl_verify=ssl_verify)
        self._connect_error: Any = None
        self._sio.on("connect_error", self._on_connect_error)
        self._sio.on("offer", self._on_server_offer)
        self._sio.on("slot", self._on_slot)
        self._sio.on("disconnect", self._on_disconnect)
        self._sio.on("closing", self._on_closing)
        self._sio.on("removed", self._on_removed)
        for name in SERVER_EVENTS:
            self._sio.on(name, self._make_listener(name))

    @property
    def connected(self) -> bool:
        return self._sio.connected

    # -- connection -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect with the join token; a refusal raises SignalingError with the server's code."""
        try:
            await self._sio.connect(self.url, auth={"token": self.token}, wait_timeout=self.timeout)
        except socketio.exceptions.ConnectionError as exc:
            code, message = refusal(self._connect_error)
            raise SignalingError(code or "connect_failed", message or str(exc)) from exc

    async def _on_connect_error(self, data: Any = None) -> None:
        self._connect_error = data

    async def call(self, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Emit ``event`` and wait for its acknowledgement; raise SignalingError on refusal."""
        try:
            ack = await self._sio.call(event, data or {}, timeout=self.timeout)
        except socketio.exceptions.TimeoutError as exc:
            raise SignalingError("timeout", f"no acknowledgement for {event!r} within {self.timeout:.0f}s") from exc
        except socketio.exceptions.BadNamespaceError as exc:
            raise SignalingError("disconnected", str(exc)) from exc
        if not isinstance(ack, dict):
            raise SignalingError("bad_ack", f"{event!r} was acknowledged with {ack!r}")
        if not ack.get("ok"):
            error = ack.get("error") or {}
            raise SignalingError(str(error.get("code", "error")), str(error.get("message", "")))
        return ack

    # -- requests ---------------------------------------------------------------------------

    async def join(self, **options: Any) -> dict[str, Any]:
        """Join the meeting; a participant left waiting in the lobby raises ``in_lobby``."""
        ack = await self.call("join", options)
        if ack.get("lobby"):
            raise SignalingError("in_lobby", "the bot is waiting in the meeting's lobby")
        self.joined = ack
        self.participant_id = ack.get("participant_id")
        self.dominant_speaker = ack.get("dominant_speaker")
        self.spotlight = ack.get("spotlight")
        self.roster = {p["participant_id"]: p for p in ack.get("roster", []) if "participant_id" in p}
        self.tracks = {t["producer_id"]: t for t in ack.get("tracks", []) if "producer_id" in t}
        return ack

    async def publish(self, offer_sdp: str) -> dict[str, Any]:
        return await self.call("publish", {"sdp": offer_sdp})

    async def subscribe(self, videos: int | None = None, audios: int | None = None) -> dict[str, Any]:
        """Ask for the receiving connection with its slots (None: the server's default, 8 videos and
        2 audios) and answer its one offer through ``on_offer``; returns the acknowledgement."""
        if self.on_offer is None:
            raise SignalingError("no_subscriber", "subscribe needs on_offer to answer the offer")
        request: dict[str, Any] = {}
        if videos is not None:
            request["videos"] = videos
        if audios is not None:
            request["audios"] = audios
        ack = await self.call("subscribe", request)
        sdp, slots = ack.get("sdp"), ack.get("slots")
        if not isinstance(sdp, str) or not isinstance(slots, list):
            raise SignalingError("bad_ack", "subscribe was acknowledged without an offer and its slots")
        self.slots = [dict(s) for s in slots if isinstance(s, dict)]
        for slot in self.slots:
            self.slot_map.setdefault(str(slot.get("slot_id")), None)
        answer = await self.on_offer(sdp, self.slots)
        await self.call("answer", {"sdp": answer, "revision": ack.get("revision", 1)})
        return ack

    async def pin(self, participant_id: str | None) -> dict[str, Any]:
        """Put ``participant_id`` on this bot's own stage (None: unpin)."""
        return await self.call("pin", {"participant_id": participant_id})

    async def set_last_n(self, n: int) -> dict[str, Any]:
        return await self.call("set_last_n", {"n": n})

    async def mute(self, kind: str, muted: bool) -> dict[str, Any]:
        return await self.call("mute", {"kind": kind, "muted": muted})

    async def leave(self) -> None:
        try:
            await self.call("leave", {})
        except SignalingError as exc:
            logger.debug("leave: %s", exc)

    async def disconnect(self) -> None:
        self._closed_by_us = True
        await self._sio.disconnect()

    # -- losing the connection --------------------------------------------------------------

    def _lose(self, reason: str, code: str | None = None) -> None:
        if self._closed_by_us or self.lost is not None:
            return
        self.lost, self.lost_code = reason, code
        if self.on_lost is not None:
            self.on_lost(self, reason, code)

    async def _on_disconnect(self, reason: Any = None) -> None:
        self._lose(f"disconnected ({reason or 'unknown reason'})")

    async def _on_closing(self, data: Any = None) -> None:
        self.events["closing"] += 1
        code = str(data.get("code") or "closing") if isinstance(data, dict) else "closing"
        message = str(data.get("message") or "") if isinstance(data, dict) else ""
        self._lose(f"the server is closing the connection ({code}{': ' + message if message else ''})", code)

    async def _on_removed(self, data: Any = None) -> None:
        self.events["removed"] += 1
        reason = str(data.get("reason") or "") if isinstance(data, dict) else ""
        self._lose(f"removed from the meeting{' (' + reason + ')' if reason else ''}", "removed")

    # -- server events ----------------------------------------------------------------------

    async def _on_server_offer(self, data: Any = None) -> None:
        """Not part of the slots protocol: counted as an error, never answered."""
        self.events["offer"] += 1
        self.offers_after_join += 1
        revision = data.get("revision") if isinstance(data, dict) else None
        self.errors.append(f"the server sent an offer (revision {revision}) after the join: slots are negotiated once")
        for callback in self.listeners:
            callback("offer", data)

    async def _on_slot(self, data: Any = None) -> None:
        self.events["slot"] += 1
        if isinstance(data, dict) and isinstance(data.get("slot_id"), str):
            slot_id, sequence = data["slot_id"], int(data.get("sequence") or 0)
            if sequence > self._slot_sequences.get(slot_id, 0):  # per slot, in sequence order
                self._slot_sequences[slot_id] = sequence
                self.slot_map[slot_id] = data.get("participant_id")
            if self.on_slot is not None:
                self.on_slot(data)
        for callback in self.listeners:
            callback("slot", data)

    def _make_listener(self, name: str) -> Callable[[Any], Awaitable[None]]:
        async def listener(data: Any = None) -> None:
            self.events[name] += 1
            if isinstance(data, dict):
                self._apply(name, data)
            for callback in self.listeners:
                callback(name, data)

        return listener

    def _apply(self, name: str, data: dict[str, Any]) -> None:
        if name == "participant_joined" and "participant_id" in data:
            self.roster[data["participant_id"]] = data
        elif name == "participant_left":
            self.roster.pop(data.get("participant_id"), None)
        elif name == "track_added" and "producer_id" in data:
            self.tracks[data["producer_id"]] = data
        elif name == "track_removed":
            self.tracks.pop(data.get("producer_id"), None)
        elif name == "dominant_speaker":
            self.dominant_speaker = data.get("participant_id")
        elif name == "spotlight":
            self.spotlight = data.get("participant_id")
