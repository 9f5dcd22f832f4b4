"""SessionRecorder: everything a session's router forwards, recorded to one folder.

- One file per published track (``track-NNN-audio.webm`` / ``track-NNN-video.webm``), fed by a
  :class:`media.packet_tap.PacketTap` on its producer: the RTP payload as received, frames put
  on the recording's time line (:mod:`recordings.timeline`), no decoder or encoder anywhere.
- ``proceedings.webm``: audio and video of whoever is on the stage (spotlight, else the floor
  holder, else the recorder's own pin, which the session sets to the chair), from a stage-only
  slot set (:func:`media.packet_tap.create_stage_tap`): switched at keyframes, continuous
  sequence numbers and timestamps, the slots' own rewriting. What most people will watch.
- ``journal.jsonl`` (:mod:`recordings.journal`): start time, files, anchors, pauses, alarms, so
  that a crash leaves enough to finalise the files and write the manifest at the next start.

A timer flushes every file's pending cluster every ``flush_ms`` (so a ``kill -9`` loses at most
that much plus the cluster being filled) and gives up video frames that wait too long.

A write error (disk full) fails that file only: ``on_alarm`` is called (the session raises the
alarm on the console and in the log); the live session goes on, and what was written stays valid.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media.packet_tap import PacketTap, create_stage_tap
from media.producer import Producer
from media.router import Router
from media.rtp_packet import RtpPacketView, monotonic_ms
from media.slot_assignment import STAGE_AUDIO, STAGE_VIDEO
from media.slot_set import SlotSet
from media.slot_report import SlotSwitch

from .errors import RecordingError
from .frames import EncodedFrame
from .journal import JOURNAL_NAME, Journal
from .timeline import TrackClock
from .track import NOMINAL_SIZE, RecordedFile, StreamFeed
from .webm import TrackSpec

logger = logging.getLogger(__name__)

PROCEEDINGS_NAME = "proceedings.webm"
#: Pending clusters are written at least this often (bounded loss on a crash).
DEFAULT_FLUSH_MS = 250
#: While a video track waits for a keyframe, ask again this often.
KEYFRAME_RETRY_MS = 1000


@dataclass(frozen=True)
class TrackOwner:
    """Whose track it is, as the session knows it (put into the journal and the manifest)."""

    participant_id: str
    person_id: int | None = None
    office_id: int | None = None
    label: str = ""


@dataclass
class _Tapped:
    producer: Producer
    tap: PacketTap
    feed: StreamFeed


@dataclass
class RecorderState:
    started_utc: dt.datetime
    origin_ms: int
    paused: bool = False
    pauses: list[dict[str, Any]] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)


def _utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SessionRecorder:
    """Records one router into ``directory`` (see the module docstring)."""

    def __init__(
        self,
        router: Router,
        directory: Path,
        *,
        owner_of: Callable[[str], TrackOwner],
        on_alarm: Callable[[str], None],
        meta: dict[str, Any] | None = None,
        flush_ms: int = DEFAULT_FLUSH_MS,
        subscriber_id: str = "recorder",
    ) -> None:
        self.router = router
        self.directory = directory
        self.subscriber_id = subscriber_id
        self.flush_ms = flush_ms
        self.closed = False
        self.files: dict[str, RecordedFile] = {}
        self._owner_of = owner_of
        self._on_alarm = on_alarm
        self._meta = meta or {}
        self._tapped: dict[str, _Tapped] = {}
        self._counter = 0
        self._stage: SlotSet | None = None
        self._stage_feeds: dict[int, StreamFeed] = {}
        self._timer: asyncio.Task[None] | None = None
        self._journal: Journal | None = None
        self.state: RecorderState | None = None
        self._listeners: list[tuple[str, Callable[..., None]]] = []
        self._stopped_ms: int | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Create the folder and the journal, tap every producer (and those to come), start the
        proceedings. Raises RecordingError when the folder cannot be written."""
        try:
            self.directory.mkdir(parents=True, exist_ok=False)
            self._journal = Journal(self.directory / JOURNAL_NAME)
        except OSError as exc:
            raise RecordingError(f"cannot create the recording folder: {exc.strerror}") from exc
        now = dt.datetime.now(dt.UTC)
        self.state = RecorderState(started_utc=now, origin_ms=monotonic_ms())
        self._journal_event("start", utc=_utc_iso(now), **self._meta)
        self._start_proceedings()
        for producer in list(self.router.producers.values()):
            self._tap(producer)
        self._listen("producer_added", self._tap)
        self._timer = asyncio.ensure_future(self._run_timer())

    def _listen(self, event: str, callback: Callable[..., None]) -> None:
        self.router.on(event, callback)
        self._listeners.append((event, callback))

    def stop_media(self) -> None:
        """Take no more packets from now on (the session closed); :meth:`close` finalises."""
        if self._stopped_ms is None and self.state is not None:
            self._stopped_ms = self.media_ms()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for event, callback in self._listeners:
            self.router.off(event, callback)
        self._listeners.clear()
        for tapped in self._tapped.values():
            tapped.tap.detach()
        if self._stage is not None:
            self._stage.close()
            self._stage = None

    async def close(self) -> list[RecordedFile]:
        """Stop: detach, finalise every file (cues, duration). Returns the files."""
        if self.closed:
            return list(self.files.values())
        self.stop_media()
        self.closed = True
        for file in self.files.values():
            file.close()
        self._journal_event("stop", media_ms=self._stopped_ms if self._stopped_ms is not None else self.media_ms())
        if self._journal is not None:
            self._journal.close()
        return list(self.files.values())

    def media_ms(self) -> int:
        """Milliseconds since the recording started."""
        assert self.state is not None
        return monotonic_ms() - self.state.origin_ms

    # -- pause (in-camera items) ------------------------------------------------------------

    def pause(self, reason: str) -> None:
        state = self.state
        if state is None or state.paused or self.closed:
            return
        state.paused = True
        at = self.media_ms()
        state.pauses.append({"start_ms": at, "end_ms": None, "reason": reason})
        for feed in self._all_feeds():
            feed.pause()
        self._journal_event("pause", media_ms=at, reason=reason)

    def resume(self) -> None:
        state = self.state
        if state is None or not state.paused or self.closed:
            return
        state.paused = False
        at = self.media_ms()
        state.pauses[-1]["end_ms"] = at
        for feed in self._all_feeds():
            feed.resume()
        self._journal_event("resume", media_ms=at)

    @property
    def paused(self) -> bool:
        return self.state is not None and self.state.paused

    # -- taps -------------------------------------------------------------------------------

    def _all_feeds(self) -> list[StreamFeed]:
        return [t.feed for t in self._tapped.values()] + list(self._stage_feeds.values())

    def _new_clock(self, clock_rate: int, file_name: str, track: int = 1) -> TrackClock:
        assert self.state is not None

        def journal(kind: str, fields: dict[str, Any]) -> None:
            self._journal_event(kind, name=file_name, track=track, **fields)

        return TrackClock(clock_rate=clock_rate, origin_ms=self.state.origin_ms, listener=journal)

    def _tap(self, producer: Producer) -> None:
        if self.closed or producer.id in self._tapped or producer.closed:
            return
        codec = producer.parameters.codec_name.upper()
        if (producer.kind, codec) not in (("video", "VP8"), ("audio", "OPUS")):
            self._alarm(f"track {producer.id} is {codec}: only VP8 and Opus are recorded")
            return
        self._counter += 1
        name = f"track-{self._counter:03d}-{producer.kind}.webm"
        owner = self._owner_of(producer.participant_id)
        file = RecordedFile(self.directory, name, title=owner.label, on_failure=self._on_file_failure)
        self.files[name] = file
        kind = producer.kind
        clock = self._new_clock(producer.parameters.clock_rate or (90000 if kind == "video" else 48000), name)

        def specs(frame: EncodedFrame) -> list[TrackSpec]:
            if kind == "video":
                return [TrackSpec(1, "video", "VP8", width=frame.width or NOMINAL_SIZE[0],
                                  height=frame.height or NOMINAL_SIZE[1], name=owner.label)]
            return [TrackSpec(1, "audio", "OPUS", name=owner.label)]

        feed = StreamFeed(file=file, track=1, kind=kind, clock=clock, request_keyframe=producer.request_keyframe,
                          lazy_open=specs)
        if self.paused:
            feed.pause()
        tap = PacketTap(
            producer,
            feed.on_packet,
            on_sender_report=lambda ntp, rtp: clock.add_sender_report(ntp, rtp, monotonic_ms()),
            on_close=lambda: self._on_producer_closed(producer.id),
        )
        self._tapped[producer.id] = _Tapped(producer, tap, feed)
        self._journal_event("file", name=name, kind="track", media=kind, producer_id=producer.id,
                            participant_id=owner.participant_id, person_id=owner.person_id,
                            office_id=owner.office_id, label=owner.label, media_ms=self.media_ms())

    def _on_producer_closed(self, producer_id: str) -> None:
        tapped = self._tapped.get(producer_id)
        if tapped is None or self.closed:
            return
        file = tapped.feed.file
        file.close()
        self._journal_event("file_end", name=file.name, media_ms=self.media_ms())

    # -- proceedings ------------------------------------------------------------------------

    def _start_proceedings(self) -> None:
        file = RecordedFile(self.directory, PROCEEDINGS_NAME, title="Proceedings", on_failure=self._on_file_failure)
        self.files[PROCEEDINGS_NAME] = file
        file.open([
            TrackSpec(1, "audio", "OPUS", name="Proceedings audio"),
            TrackSpec(2, "video", "VP8", width=NOMINAL_SIZE[0], height=NOMINAL_SIZE[1], name="Proceedings video"),
        ])
        self._journal_event("file", name=PROCEEDINGS_NAME, kind="proceedings", media="av", media_ms=self.media_ms())
        stage = create_stage_tap(self.router, self.subscriber_id, self._on_stage_rtp)
        self._stage = stage
        audio_slot, video_slot = stage.slots[STAGE_AUDIO], stage.slots[STAGE_VIDEO]

        def request_keyframe() -> None:
            source = video_slot.source or video_slot.pending
            if source is not None:
                source.request_keyframe()

        self._stage_feeds = {
            audio_slot.ssrc: StreamFeed(file=file, track=1, kind="audio", clock=self._new_clock(48000, file.name, 1),
                                        request_keyframe=lambda: None),
            video_slot.ssrc: StreamFeed(file=file, track=2, kind="video", clock=self._new_clock(90000, file.name, 2),
                                        request_keyframe=request_keyframe),
        }
        stage.on("switch", self._on_stage_switch)

    def _on_stage_rtp(self, data: bytes) -> bool:
        try:
            packet = RtpPacketView.parse(data, monotonic_ms())
        except ValueError:
            return False
        feed = self._stage_feeds.get(packet.ssrc)
        if feed is not None:
            feed.on_packet(packet)
        return True

    def _on_stage_switch(self, event: SlotSwitch) -> None:
        if self.state is None:
            return
        self._journal_event("stage", slot=event.slot_id, producer_id=event.producer_id, media_ms=self.media_ms())

    # -- timer, alarms ----------------------------------------------------------------------

    async def _run_timer(self) -> None:
        last_retry = monotonic_ms()
        try:
            while not self.closed:
                await asyncio.sleep(self.flush_ms / 1000)
                now = monotonic_ms()
                feeds = self._all_feeds()
                for feed in feeds:
                    feed.tick(now)
                if now - last_retry >= KEYFRAME_RETRY_MS:
                    last_retry = now
                    for feed in feeds:
                        feed.ask_keyframe_again()
                for file in self.files.values():
                    file.flush()
        except asyncio.CancelledError:
            pass

    def _on_file_failure(self, file: RecordedFile, exc: RecordingError) -> None:
        self._alarm(f"recording of {file.name} stopped: {exc}")

    def _alarm(self, message: str) -> None:
        if self.state is not None:
            self.state.alarms.append(message)
        logger.error("recording %s: %s", self.directory.name, message)
        try:
            self._journal_event("alarm", message=message, media_ms=self.media_ms() if self.state else 0)
        except RecordingError:
            pass
        self._on_alarm(message)

    def _journal_event(self, event: str, **fields: Any) -> None:
        if self._journal is None:
            return
        try:
            self._journal.append(event, **fields)
        except RecordingError as exc:
            logger.error("recording %s: %s", self.directory.name, exc)

    def bytes_written(self) -> int:
        """What this recording's files hold so far (for the archive's quota)."""
        return sum(f.writer.bytes_written for f in self.files.values() if f.writer is not None) + sum(
            f.summary.size for f in self.files.values() if f.writer is None and f.summary is not None)

    def feed_stats(self) -> dict[str, dict[str, int]]:
        """Per file name: packets, frames and frames lost of its streams."""
        out: dict[str, dict[str, int]] = {}
        for feed in self._all_feeds():
            entry = out.setdefault(feed.file.name, {"packets": 0, "frames": 0, "frames_lost": 0})
            entry["packets"] += feed.stats.packets
            entry["frames"] += feed.stats.frames
            entry["frames_lost"] += feed.frames_lost
        return out
