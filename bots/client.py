"""Signaling client: Cabinet's socket.io protocol, with no media inside.

Every client event is emitted with an acknowledgement; ``{"ok": false, "error": {...}}`` becomes
a :class:`SignalingError`. The media halves (:class:`bots.publisher.Publisher`,
:class:`bots.subscriber.Subscriber`) are attached through callbacks, so they stay usable without
any server (see :mod:`bots.inprocess`).

One client is one connection: python-socketio's own reconnection stays off (``reconnection=False``)
because every connection needs a new single-use join token; :class:`bots.bot.Bot` reconnects with
a new client. A connection the bot did not close itself is reported once through ``on_lost``
(reason, code): a disconnect, the server's ``closing {code, message}``, or ``removed``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
import socketio.exceptions

from .errors import SignalingError

logger = logging.getLogger(__name__)

#: Answers a server offer: (sdp, consumers) -> answer sdp.
OfferHandler = Callable[[str, list[dict[str, Any]]], Awaitable[str]]
#: Told once when the connection is lost without the bot closing it: (reason, server code or None).
LostHandler = Callable[["SignalingClient", str, str | None], None]

SERVER_EVENTS = (
    "participant_joined",
    "participant_left",
    "track_added",
    "track_removed",
    "dominant_speaker",
    "last_n",
    "mute_changed",
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
        self._offers: asyncio.PriorityQueue[tuple[int, int, dict[str, Any], asyncio.Future[None] | None]] = (
            asyncio.PriorityQueue()
        )
        self._offer_seq = 0
        self._answered_revision = 0
        self._offer_task: asyncio.Task[None] | None = None
        self._sio.on("connect_error", self._on_connect_error)
        self._sio.on("offer", self._on_server_offer)
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
        self._offer_task = asyncio.ensure_future(self._process_offers())

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
        self.roster = {p["participant_id"]: p for p in ack.get("roster", []) if "participant_id" in p}
        self.tracks = {t["producer_id"]: t for t in ack.get("tracks", []) if "producer_id" in t}
        return ack

    async def publish(self, offer_sdp: str) -> dict[str, Any]:
        return await self.call("publish", {"sdp": offer_sdp})

    async def subscribe(self) -> dict[str, Any]:
        """Ask for the receiving connection; the server's first offer is answered through
        ``on_offer`` like every later one."""
        ack = await self.call("subscribe", {})
        if not isinstance(ack.get("sdp"), str):
            return ack  # nothing to receive yet: the first offer will be pushed
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(ack, done)
        await done
        return ack

    async def mute(self, kind: str, muted: bool) -> dict[str, Any]:
        return await self.call("mute", {"kind": kind, "muted": muted})

    async def leave(self) -> None:
        try:
            await self.call("leave", {})
        except SignalingError as exc:
            logger.debug("leave: %s", exc)

    async def disconnect(self) -> None:
        self._closed_by_us = True
        if self._offer_task is not None:
            self._offer_task.cancel()
            await asyncio.gather(self._offer_task, return_exceptions=True)
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

    async def _on_server_offer(self, data: Any) -> None:
        self.events["offer"] += 1
        if isinstance(data, dict) and isinstance(data.get("sdp"), str):
            self._enqueue(data, None)

    def _enqueue(self, offer: dict[str, Any], done: asyncio.Future[None] | None) -> None:
        self._offer_seq += 1
        revision = offer.get("revision")
        self._offers.put_nowait((revision if isinstance(revision, int) else 0, self._offer_seq, offer, done))

    async def _process_offers(self) -> None:
        """Answer server offers one at a time in revision order (aiortc needs a stable state);
        an offer older than one already answered is stale and skipped."""
        try:
            while True:
                revision, _, offer, done = await self._offers.get()
                while not self._offers.empty():  # only the newest offer needs an answer
                    if done is not None and not done.done():
                        done.set_result(None)
                    revision, _, offer, done = self._offers.get_nowait()
                try:
                    if revision and revision <= self._answered_revision:
                        logger.debug("skipping stale offer %s", revision)
                    else:
                        await self._answer(offer)
                        self._answered_revision = max(self._answered_revision, revision)
                    if done is not None and not done.done():
                        done.set_result(None)
                except Exception as exc:  # noqa: BLE001 - keep answering later offers
                    if done is not None and not done.done():
                        done.set_exception(exc)
                    elif not self._offers.empty():
                        logger.debug("offer %s superseded while answering: %s", revision, exc)
                    else:
                        logger.warning("cannot answer server offer %s: %s", revision, exc)
                        self.errors.append(f"offer {revision}: {exc}")
        except asyncio.CancelledError:
            pass

    async def _answer(self, offer: dict[str, Any]) -> None:
        if self.on_offer is None:
            raise SignalingError("no_subscriber", "a server offer arrived but nothing subscribes")
        sdp = await self.on_offer(offer["sdp"], list(offer.get("consumers") or []))
        await self.call("answer", {"sdp": sdp, "revision": offer.get("revision")})

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
