"""A whole bot: signaling client + publisher + subscriber, run for a while, then a report.

Reconnection (on by default, ``BotOptions.reconnect``), as the web page does it: when the signaling
connection is lost without the bot closing it (a disconnect, or the server's ``closing`` with a code
that is not fatal), the bot tears down its peer connections, waits 0.5 s, then backs off doubling up
to 5 s (at most 1 s after ``closing {code: "restarting"}``: a planned restart comes back soon), gets
a NEW join token from its :class:`bots.tokens.TokenSource` (tokens are single-use), connects, joins,
publishes and subscribes again. It stops at a fatal refusal: ``removed`` (event, ``closing`` code or
join refusal), ``locked``/``forbidden``/``token_invalid`` refusing the join, or a login refused
(401 after logging in again, 403, 404). A bot given only a single-use token cannot reconnect, and
says so in its report. python-socketio's own reconnection stays off: it would reuse the spent token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .client import SignalingClient
from .errors import BotError, SignalingError
from .media_files import MediaParams, PreEncodedMedia, load_media
from .peer import bind_addresses_for, ice_servers_from
from .publisher import Publisher
from .report import BotReport, ConnectionInterval, PublishReport, StreamReport, merge_publish
from .subscriber import Subscriber
from .tokens import SINGLE_USE, StaticToken, TokenSource

logger = logging.getLogger(__name__)

#: Join refusals after which trying again cannot help (the page's list).
FATAL_JOIN_CODES = frozenset({"locked", "removed", "forbidden", "token_invalid"})
#: ``closing`` codes (and the ``removed`` event) after which the bot must not come back.
FATAL_CLOSING_CODES = frozenset({"removed", "forbidden", "locked", "token_invalid", "disabled", "not_invited",
                                 "login_ended", "session_ended", "meeting_ended"})
#: ``closing`` codes announcing that the server will be back soon: retry at a short, steady pace.
PROMPT_CLOSING_CODES = frozenset({"restarting"})
FIRST_DELAY = 0.5
MAX_DELAY = 5.0
PROMPT_MAX_DELAY = 1.0


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def backoff(attempt: int, prompt: bool = False) -> float:
    """Seconds to wait before attempt ``attempt`` (0-based): 0.5, 1, 2, 4, 5, 5... like the page."""
    return FIRST_DELAY if attempt == 0 else min(PROMPT_MAX_DELAY if prompt else MAX_DELAY, FIRST_DELAY * 2**attempt)


@dataclass
class BotOptions:
    url: str
    #: A join token for the first connection ("" : take it from ``token_source``).
    token: str = ""
    name: str = "bot"
    publish: bool = True
    subscribe: bool = True
    lean: bool = False
    #: Full subscriber: decode every slot ("all") or only the stage's audio and video ("stage").
    decode: str = "all"
    #: Slots asked for at subscribe: thumbnails (0..8) and extra voices (0..2).
    videos: int = 8
    audios: int = 2
    audio: bool = True
    video: bool = True
    speaking: bool = True
    media_params: MediaParams = field(default_factory=MediaParams)
    cache_dir: Path | None = None
    #: Host candidate addresses; None: 127.0.0.1 when the server is on loopback, else aioice's.
    bind_addresses: list[str] | None = None
    ssl_verify: bool = True
    timeout: float = 15.0
    #: New join tokens for reconnections (None: only ``token``, so the bot cannot reconnect).
    #: The bot closes it in :meth:`Bot.stop`.
    token_source: TokenSource | None = None
    #: Reconnect after a lost connection (False: stay disconnected, as tests of losses need).
    reconnect: bool = True


class Bot:
    def __init__(self, options: BotOptions, media: PreEncodedMedia | None = None) -> None:
        if not (options.publish or options.subscribe):
            raise BotError("a bot must publish, subscribe or both")
        if not (options.token or options.token_source):
            raise BotError("a bot needs a join token or a token source")
        self.options = options
        self.media = media
        self.token_source: TokenSource = options.token_source or StaticToken(options.token)
        #: A token given with a separate token source is used first; a StaticToken hands out its own.
        self._first_token: str | None = options.token if options.token_source is not None and options.token else None
        self._past_offers = 0
        self.client = self._new_client(options.token or "")
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        #: "idle", "connecting", "joined", "reconnecting", "failed" (gave up) or "stopped".
        self.state = "idle"
        self.reconnects = 0
        self.connections: list[ConnectionInterval] = []
        self.gave_up: str | None = None
        #: Set when the bot stops trying to reconnect (run_bot then ends early).
        self.given_up = asyncio.Event()
        self._errors: list[str] = self.client.errors
        self._events = self.client.events
        self._past_publish: list[PublishReport] = []
        self._past_streams: list[StreamReport] = []
        self._started_at = 0.0
        self._stopping = False
        self._recovery: asyncio.Task[None] | None = None
        #: Set whenever the bot is joined (again); cleared when a loss is noticed.
        self.joined_event = asyncio.Event()

    @property
    def mode(self) -> str:
        parts = []
        if self.options.publish:
            parts.append("publish")
        if self.options.subscribe:
            parts.append("subscribe-lean" if self.options.lean else "subscribe-full")
        return "+".join(parts)

    @property
    def reconnect_mode(self) -> str:
        if not self.options.reconnect:
            return "off"
        return "on" if self.token_source.refreshable else "impossible"

    def _new_client(self, token: str) -> SignalingClient:
        options = self.options
        client = SignalingClient(options.url, token, timeout=options.timeout, ssl_verify=options.ssl_verify)
        old = getattr(self, "client", None)
        if old is not None:  # one history across connections
            client.events, client.errors, client.listeners = old.events, old.errors, old.listeners
            self._past_offers += old.offers_after_join
        client.on_lost = self._on_lost
        return client

    # -- connecting -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, join, publish and/or subscribe. Raises BotError (e.g. SignalingError); the first
        connection is not retried."""
        self.state = "connecting"
        token, self._first_token = self._first_token, None
        try:
            await self._connect(token or await self.token_source.token(), first=True)
        except BaseException as exc:
            self.state = "failed"
            self._end_interval(f"failed: {exc}")
            raise
        self._started_at = time.monotonic()
        self._joined()

    async def _connect(self, token: str, *, first: bool = False) -> None:
        """One connection: connect, join, publish, subscribe (on a new client unless ``first``)."""
        options = self.options
        bind = options.bind_addresses if options.bind_addresses is not None else bind_addresses_for(options.url)
        if first:
            self.client.token = token
        else:
            self.client = self._new_client(token)
        client = self.client
        await client.connect()
        interval = ConnectionInterval(connected_at=utc_now())
        self.connections.append(interval)
        try:
            joined = await client.join()
        except SignalingError as exc:
            exc.fatal = exc.fatal or exc.code in FATAL_JOIN_CODES
            raise
        interval.joined_at = utc_now()
        interval.participant_id = client.participant_id
        ice_servers = ice_servers_from(joined.get("ice_servers"))
        if options.publish:
            media = self.media or load_media(options.media_params, options.cache_dir)
            self.media = media
            self.publisher = Publisher(
                media,
                audio=options.audio,
                video=options.video,
                speaking=options.speaking,
                bind_addresses=bind,
                ice_servers=ice_servers,
                identity=client.participant_id,
            )
            ack = await client.publish(await self.publisher.offer())
            await self.publisher.accept_answer(ack["sdp"])
        if options.subscribe:
            self.subscriber = Subscriber(lean=options.lean, decode=options.decode, videos=options.videos,
                                         audios=options.audios, bind_addresses=bind, ice_servers=ice_servers)
            client.on_offer = self.subscriber.accept_offer
            client.on_slot = self.subscriber.on_slot
            await client.subscribe(options.videos, options.audios)

    def _joined(self) -> None:
        self.state = "joined"
        self.joined_event.set()
        if self.client.lost is not None:  # lost while getting in: a loss like any other
            self._on_lost(self.client, self.client.lost, self.client.lost_code)

    # -- losing the connection and getting it back ------------------------------------------

    def _on_lost(self, client: SignalingClient, reason: str, code: str | None) -> None:
        if client is not self.client or self._stopping or self.state != "joined":
            return  # an old client, the bot is leaving, or it is still getting in (handled there)
        logger.warning("bot %s: connection lost: %s", self.options.name, reason)
        self.state = "reconnecting"
        self.joined_event.clear()
        self._recovery = asyncio.ensure_future(self._recover(reason, code))

    def _end_interval(self, reason: str) -> None:
        if self.connections and self.connections[-1].ended_at is None:
            self.connections[-1].ended_at = utc_now()
            self.connections[-1].end_reason = reason

    async def _teardown(self, reason: str) -> None:
        """Close the peer connections and the signaling client; keep their statistics."""
        self._end_interval(reason)
        publisher, subscriber = self.publisher, self.subscriber
        self.publisher = self.subscriber = None
        if publisher is not None:
            self._past_publish.append(publisher.stats)
        if subscriber is not None:
            self._past_streams.extend(subscriber.reports())
        for part in (publisher, subscriber):
            if part is not None:
                try:
                    await part.close()
                except Exception:  # noqa: BLE001 - closing must not fail the caller
                    logger.debug("error closing %r", part, exc_info=True)
        try:
            await self.client.disconnect()
        except Exception:  # noqa: BLE001
            logger.debug("error disconnecting", exc_info=True)

    def _give_up(self, message: str) -> None:
        self.state = "failed"
        self.gave_up = message
        self.given_up.set()
        self._errors.append(message)
        logger.warning("bot %s: %s", self.options.name, message)

    async def _recover(self, reason: str, code: str | None) -> None:
        lost_at = utc_now()
        await self._teardown(reason)
        if code in FATAL_CLOSING_CODES:
            self._give_up(f"connection lost at {lost_at}: {reason}; not reconnecting (the server refused the bot)")
            return
        if not self.options.reconnect:
            self._give_up(f"connection lost at {lost_at}: {reason}; not reconnecting (reconnection is off)")
            return
        if not self.token_source.refreshable:
            self._give_up(f"connection lost at {lost_at}: {reason}; cannot reconnect: {SINGLE_USE}")
            return
        prompt = code in PROMPT_CLOSING_CODES
        attempt = 0
        while not self._stopping:
            await asyncio.sleep(backoff(attempt, prompt))
            attempt += 1
            if self._stopping:
                return
            try:
                await self._connect(await self.token_source.token())
            except (BotError, OSError, asyncio.TimeoutError) as exc:
                failure = f"reconnection attempt {attempt} failed: {exc}"
                logger.info("bot %s: %s", self.options.name, failure)
                await self._teardown(failure)
                if getattr(exc, "fatal", False):
                    self._give_up(f"connection lost at {lost_at}: {reason}; stopped reconnecting: {exc}")
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. aiortc failing: try again like a lost network
                logger.warning("bot %s: reconnection attempt %d failed", self.options.name, attempt, exc_info=True)
                await self._teardown(f"reconnection attempt {attempt} failed: {exc!r}")
                continue
            self.reconnects += 1
            logger.warning("bot %s: reconnected after %d attempt(s)", self.options.name, attempt)
            self._joined()
            return

    # -- while running ----------------------------------------------------------------------

    async def set_speaking(self, speaking: bool) -> None:
        if self.publisher is not None:
            self.publisher.speaking = speaking

    async def speak_for(self, ms: int) -> None:
        """Speak for ``ms`` of audio (whole 20 ms packets), then as before; returns once it is sent."""
        publisher = self.publisher
        if publisher is None:
            return
        publisher.speak_packets(max(1, round(ms / 20)))
        while publisher.burst_left > 0 and not publisher.is_closed:
            await asyncio.sleep(0.02)

    async def wait_joined(self, timeout: float) -> None:
        """Wait until the bot is joined (again); asyncio.TimeoutError otherwise."""
        await asyncio.wait_for(self.joined_event.wait(), timeout)

    def report(self) -> BotReport:
        client = self.client
        publish = self._past_publish + ([self.publisher.stats] if self.publisher is not None else [])
        streams = self._past_streams + (self.subscriber.reports() if self.subscriber is not None else [])
        report = BotReport(
            name=self.options.name,
            mode=self.mode,
            seconds=round(time.monotonic() - self._started_at, 2) if self._started_at else 0.0,
            participant_id=client.participant_id,
            publish=merge_publish(publish),
            streams=streams,
            dominant_speaker=client.dominant_speaker,
            events=dict(self._events),
            errors=list(self._errors),
            reconnects=self.reconnects,
            connections=[ConnectionInterval(**vars(c)) for c in self.connections],
            reconnect=self.reconnect_mode,
            gave_up=self.gave_up,
            slots=dict(client.slot_map),
            offers_after_join=self._past_offers + client.offers_after_join,
        )
        return report

    async def stop(self) -> None:
        """Leave (when connected) and close everything, token source included; never raises."""
        self._stopping = True
        if self._recovery is not None and not self._recovery.done():
            self._recovery.cancel()
            await asyncio.gather(self._recovery, return_exceptions=True)
        if self.client.connected and self.client.lost is None:
            await self.client.leave()
        await self._teardown("left")
        if self.state != "failed":
            self.state = "stopped"
        try:
            await self.token_source.close()
        except Exception:  # noqa: BLE001
            logger.debug("error closing the token source", exc_info=True)


def _progress(path: Path, elapsed: float, report: BotReport) -> None:
    streams = [{"participant_id": s.participant_id, "kind": s.kind, "frames_received": s.frames_received}
               for s in report.streams]
    line = {"t": round(elapsed, 2), "at": round(time.time(), 3), "streams": streams}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


async def run_bot(options: BotOptions, seconds: float, media: PreEncodedMedia | None = None, *,
                  progress: Path | None = None) -> BotReport:
    """Start a bot, let it run ``seconds``, return its report (errors included, never raised). With
    ``progress``, a JSON line each second there: the seconds since the start and, per stream received, the
    frames so far (a caller reads a rate over any window of a long run, not only over the whole run)."""
    bot = Bot(options, media)
    try:
        await bot.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (left := seconds - (loop.time() - started)) > 0:  # the whole time, or until the bot gives up
            try:
                await asyncio.wait_for(bot.given_up.wait(), min(left, 1.0) if progress else left)
                break
            except TimeoutError:
                pass
            if progress is not None:
                _progress(progress, loop.time() - started, bot.report())
        report = bot.report()
    except BotError as exc:
        report = bot.report()
        report.errors.append(str(exc))
    finally:
        await bot.stop()
    return report
