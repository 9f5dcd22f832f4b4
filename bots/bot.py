"""A whole bot: signaling client + publisher + subscriber, run for a while, then a report."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from .client import SignalingClient
from .errors import BotError
from .media_files import MediaParams, PreEncodedMedia, load_media
from .peer import bind_addresses_for, ice_servers_from
from .publisher import Publisher
from .report import BotReport
from .subscriber import Subscriber

logger = logging.getLogger(__name__)


@dataclass
class BotOptions:
    url: str
    token: str
    name: str = "bot"
    publish: bool = True
    subscribe: bool = True
    lean: bool = False
    audio: bool = True
    video: bool = True
    speaking: bool = True
    media_params: MediaParams = field(default_factory=MediaParams)
    cache_dir: Path | None = None
    #: Host candidate addresses; None: 127.0.0.1 when the server is on loopback, else aioice's.
    bind_addresses: list[str] | None = None
    ssl_verify: bool = True
    timeout: float = 15.0


class Bot:
    def __init__(self, options: BotOptions, media: PreEncodedMedia | None = None) -> None:
        if not (options.publish or options.subscribe):
            raise BotError("a bot must publish, subscribe or both")
        self.options = options
        self.media = media
        self.client = SignalingClient(options.url, options.token, timeout=options.timeout, ssl_verify=options.ssl_verify)
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self._started_at = 0.0

    @property
    def mode(self) -> str:
        parts = []
        if self.options.publish:
            parts.append("publish")
        if self.options.subscribe:
            parts.append("subscribe-lean" if self.options.lean else "subscribe-full")
        return "+".join(parts)

    async def start(self) -> None:
        """Connect, join, publish and/or subscribe. Raises BotError (e.g. SignalingError)."""
        options = self.options
        bind = options.bind_addresses if options.bind_addresses is not None else bind_addresses_for(options.url)
        await self.client.connect()
        joined = await self.client.join()
        ice_servers = ice_servers_from(joined.get("ice_servers"))
        self._started_at = time.monotonic()
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
            )
            ack = await self.client.publish(await self.publisher.offer())
            await self.publisher.accept_answer(ack["sdp"])
        if options.subscribe:
            self.subscriber = Subscriber(lean=options.lean, bind_addresses=bind, ice_servers=ice_servers)
            self.client.on_offer = self.subscriber.on_offer
            await self.client.subscribe()

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

    def report(self) -> BotReport:
        client = self.client
        report = BotReport(
            name=self.options.name,
            mode=self.mode,
            seconds=round(time.monotonic() - self._started_at, 2) if self._started_at else 0.0,
            participant_id=client.participant_id,
            publish=self.publisher.stats if self.publisher is not None else None,
            streams=self.subscriber.reports() if self.subscriber is not None else [],
            dominant_speaker=client.dominant_speaker,
            events=dict(client.events),
            errors=list(client.errors),
        )
        return report

    async def stop(self) -> None:
        """Leave (when connected) and close everything; never raises."""
        if self.client.connected:
            await self.client.leave()
        for part in (self.publisher, self.subscriber):
            if part is not None:
                try:
                    await part.close()
                except Exception:  # noqa: BLE001 - closing must not fail the caller
                    logger.debug("error closing %r", part, exc_info=True)
        try:
            await self.client.disconnect()
        except Exception:  # noqa: BLE001
            logger.debug("error disconnecting", exc_info=True)


async def run_bot(options: BotOptions, seconds: float, media: PreEncodedMedia | None = None) -> BotReport:
    """Start a bot, let it run ``seconds``, return its report (errors included, never raised)."""
    bot = Bot(options, media)
    try:
        await bot.start()
        await asyncio.sleep(seconds)
        report = bot.report()
    except BotError as exc:
        report = bot.report()
        report.errors.append(str(exc))
    finally:
        await bot.stop()
    return report
