"""The subscribing half of a bot: answers the receiving connection's one offer and measures what arrives.

Slots (the signaling protocol since issue 11): the receiving connection is negotiated ONCE, at
subscribe, with a fixed set of slots (the stage's audio and video, ``videos`` thumbnails, ``audios``
extra voices); :meth:`Subscriber.accept_offer` answers that offer (aiortc with bundlePolicy
MAX_BUNDLE) and there is never another one. Who a slot carries changes without SDP: the server's
``slot`` events go to :meth:`Subscriber.on_slot` (per slot, in sequence order), which keeps each
slot's timeline; every stream's statistics are keyed by slot and name the participant it carries
now, and every stamped video frame is checked against the participant named for its RTP timestamp
(:mod:`bots.receive_stats`).

* Full mode: aiortc's receivers decode audio and video as a browser would (``decode="all"``, or
  ``"stage"``: only the stage's audio and video, the other slots are only counted); decoded frames
  are counted per slot, the bar code of every decoded picture is read and checked against the
  stamp its frame carried (and its stamped identity against the slot map), freezes come from gaps
  between decoded frames, audio energy from the decoded samples. A tap on the decrypted RTP
  (``install_rtp_filter``) reads the stamps.
* Lean mode: no decoder runs. Decrypted RTP goes straight to the bot (``install_packet_hooks``):
  packets and frames are counted, loss found from sequence gaps (and NACKed), latency read from
  the stamps; a sample is decoded to prove validity (:mod:`bots.sampling`). The bot sends its own
  receiver reports and NACKs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from media import aiortc_seams as seams
from media.rtcp import ReportBlock, SenderReport, build_nack, build_rr, parse_compound
from media.rtp_packet import RtpPacketView, monotonic_ms

from .errors import NegotiationError
from .peer import configure_host_candidates, new_peer_connection
from .publisher import URI_AUDIO_LEVEL
from .receive_stats import SlotTimeline, StreamCounter
from .report import StreamReport
from .sampling import AudioSampler, VideoSampler
from .stamp import now_us

logger = logging.getLogger(__name__)

RTCP_INTERVAL_S = 1.0
DEFAULT_VIDEO_SLOTS = 8
DEFAULT_AUDIO_SLOTS = 2
STAGE_SLOTS = frozenset({"stage-audio", "stage-video"})
DECODE_CHOICES = ("all", "stage")


def bot_answer(sdp: str) -> str:
    """The answer a bot sends: without ``goog-remb`` (aiortc's delay-based estimator, run in a loop
    shared with other bots, reports overuse that is only CPU; the server then judges the bot's link
    by its loss reports) and without RED (aiortc cannot decode it: RFC 2198 packets would reach its
    decoder). What the bot's own connection applied is unchanged; the server negotiates this."""
    red = {line.split()[0].split(":")[1] for line in sdp.splitlines() if line.startswith("a=rtpmap:")
           and line.split()[1].lower().startswith("red/")}
    out = []
    for line in sdp.splitlines(keepends=True):
        text = line.rstrip("\r\n")
        if text.endswith(" goog-remb"):
            continue
        if text.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")) and text.split()[0].split(":")[1] in red:
            continue
        if text.startswith("m=audio") and red:
            parts = text.split(" ")
            line = " ".join(parts[:3] + [p for p in parts[3:] if p not in red]) + line[len(text):]
        out.append(line)
    return "".join(out)


@dataclass
class _Stream:
    counter: StreamCounter
    ssrc: int
    payload_type: int
    rtx_payload_type: int | None
    level_id: int
    video_sampler: VideoSampler | None = None
    audio_sampler: AudioSampler | None = None
    last_sr_lsr: int = 0
    last_sr_ms: int = 0
    reported_expected: int = 0
    reported_lost: int = 0


class Subscriber:
    def __init__(
        self,
        *,
        lean: bool = False,
        decode: str = "all",
        videos: int = DEFAULT_VIDEO_SLOTS,
        audios: int = DEFAULT_AUDIO_SLOTS,
        bind_addresses: list[str] | None = None,
        ice_servers: list[Any] | None = None,
        video_sample_interval_s: float = 1.0,
        video_sample_run: int = 3,
        audio_sample_every: int = 50,
    ) -> None:
        if decode not in DECODE_CHOICES:
            raise ValueError(f"decode must be one of {DECODE_CHOICES}")
        self.lean = lean
        self.decode = decode
        #: Slot counts asked for at subscribe (videos 0..8 thumbnails, audios 0..2 extra voices).
        self.videos = videos
        self.audios = audios
        self.negotiations = 0
        #: The slots of the subscribe acknowledgement, by slot id, and each slot's timeline.
        self.slots: dict[str, dict[str, Any]] = {}
        self.timelines: dict[str, SlotTimeline] = {}
        #: ``slot`` events applied, and those ignored (older than the slot's last, or unknown slot).
        self.slot_events = 0
        self.stale_slot_events = 0
        self.malformed = 0
        self.unknown_ssrc = 0
        self._bind = bind_addresses or []
        self._ice_servers = ice_servers or []
        self._sample = (video_sample_interval_s, video_sample_run, audio_sample_every)
        self._pc: Any = None
        self._lock = asyncio.Lock()
        self._streams: dict[str, _Stream] = {}
        self._by_ssrc: dict[int, tuple[_Stream, bool]] = {}
        self._slot_of_mid: dict[str, str] = {}
        self._decoded_ssrcs: set[int] = set()
        self._hooked: set[int] = set()
        self._egress: seams.SrtpEgress | None = None
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._tasks: set[asyncio.Task[None]] = set()
        self._rtcp_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def peer_connection(self) -> Any:
        return self._pc

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState if self._pc is not None else "new"

    @property
    def counters(self) -> list[StreamCounter]:
        return [s.counter for s in self._streams.values()]

    @property
    def slot_map(self) -> dict[str, str | None]:
        """Who each slot carries now (participant id, None: empty or not yet told)."""
        return {slot_id: timeline.participant_id for slot_id, timeline in self.timelines.items()}

    # -- negotiation ------------------------------------------------------------------------

    async def accept_offer(self, sdp: str, slots: list[dict[str, Any]]) -> str:
        """Apply the receiving connection's one offer (its ``slots`` from the subscribe
        acknowledgement) and return the answer SDP. A second offer is refused: slots are
        negotiated once."""
        async with self._lock:
            if self._closed:
                raise NegotiationError("subscriber is closed")
            if self._pc is not None:
                raise NegotiationError("the receiving connection is negotiated once (slots); a second offer is refused")
            for slot in slots:
                slot_id = str(slot.get("slot_id"))
                self.slots[slot_id] = dict(slot)
                self.timelines.setdefault(slot_id, SlotTimeline())
                if slot.get("mid") is not None:
                    self._slot_of_mid[str(slot["mid"])] = slot_id
            self._pc = pc = new_peer_connection(self._ice_servers)  # bundlePolicy MAX_BUNDLE
            if not self.lean:
                pc.on("track", self._on_track)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                if self.lean:
                    for transceiver in pc.getTransceivers():
                        seams.neutralize_receiver(transceiver.receiver)
                        seams.neutralize_sender(transceiver.sender)
                configure_host_candidates(pc, self._bind)
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:
                raise NegotiationError(f"cannot answer offer: {exc}") from exc
            self._map_streams()
            self._install_hooks()
            self.negotiations += 1
            return bot_answer(pc.localDescription.sdp)

    def on_slot(self, event: dict[str, Any]) -> bool:
        """A server ``slot`` event: apply it to its slot (found by ``slot_id``, else by ``mid``)
        unless it is older than the last one applied there."""
        slot_id = event.get("slot_id")
        if slot_id not in self.timelines:
            slot_id = self._slot_of_mid.get(str(event.get("mid")))
        timeline = self.timelines.get(slot_id) if slot_id is not None else None
        if timeline is None or not timeline.apply(event):
            self.stale_slot_events += 1
            return False
        self.slot_events += 1
        return True

    def _decodes(self, slot_id: str) -> bool:
        return not self.lean and (self.decode == "all" or slot_id in STAGE_SLOTS)

    def _map_streams(self) -> None:
        pc = self._pc
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            if mid is None:
                continue
            slot_id = self._slot_of_mid.get(mid, f"mid-{mid}")
            if slot_id in self._streams or transceiver.currentDirection not in ("recvonly", "sendrecv"):
                continue
            ssrc, rtx_ssrc = seams.remote_ssrcs(pc, mid)
            codecs, extensions = seams.negotiated_parameters(transceiver)
            media = [c for c in codecs if c.name.lower() != "rtx"]
            if ssrc is None or not media:
                continue
            codec = media[0]
            rtx_pt = next((c.payloadType for c in codecs if c.name.lower() == "rtx" and c.parameters.get("apt") == codec.payloadType), None)
            level_id = next((e.id for e in extensions if e.uri == URI_AUDIO_LEVEL), 0) if transceiver.kind == "audio" else 0
            timeline = self.timelines.setdefault(slot_id, SlotTimeline())
            counter = StreamCounter(transceiver.kind, mid, codec.clockRate, slot_id=slot_id, timeline=timeline)
            counter.arrival_freezes = not self._decodes(slot_id)
            stream = _Stream(counter, ssrc, codec.payloadType, rtx_pt, level_id)
            if self.lean:
                interval, run, every = self._sample
                if transceiver.kind == "video":
                    stream.video_sampler = VideoSampler(counter, interval_s=interval, run=run)
                else:
                    stream.audio_sampler = AudioSampler(counter, every=every)
            self._streams[slot_id] = stream
            self._by_ssrc[ssrc] = (stream, False)
            if rtx_ssrc is not None:
                self._by_ssrc[rtx_ssrc] = (stream, True)
            if self._decodes(slot_id):
                self._decoded_ssrcs.add(ssrc)
                if rtx_ssrc is not None:
                    self._decoded_ssrcs.add(rtx_ssrc)

    def _install_hooks(self) -> None:
        for dtls in seams.dtls_transports(self._pc):
            if id(dtls) in self._hooked:
                continue
            self._hooked.add(id(dtls))
            if self.lean:
                seams.install_packet_hooks(dtls, self._on_rtp, self._on_rtcp)
                self._egress = seams.SrtpEgress(dtls)
                self._rtcp_task = asyncio.ensure_future(self._run_rtcp())
            else:
                seams.install_rtp_filter(dtls, self._tap_rtp)
                seams.install_rtcp_filter(dtls, self._tap_rtcp)

    # -- packets (both modes) ---------------------------------------------------------------

    def _handle_rtp(self, data: bytes) -> bool:
        """Account one decrypted RTP packet; True when aiortc should also get it (full mode: a
        slot it decodes)."""
        arrival = now_us()
        try:
            view = RtpPacketView.parse(data)
        except ValueError:
            self.malformed += 1
            return True
        entry = self._by_ssrc.get(view.ssrc)
        if entry is None:
            self.unknown_ssrc += 1
            return True
        keep = view.ssrc in self._decoded_ssrcs
        stream, is_rtx = entry
        if is_rtx:
            if view.payload_type != stream.rtx_payload_type:
                return keep
            try:
                view.unwrap_rtx(stream.payload_type, stream.ssrc)
            except ValueError:
                return keep  # padding-only probe
        payload = view.payload
        level = -1
        if stream.level_id:
            try:
                value = view.extension(stream.level_id)
            except ValueError:
                value = None
            if value:
                level = value[0]
        counter = stream.counter
        stamp = counter.on_packet(view.sequence_number, view.timestamp, view.marker, payload, arrival, level)
        if counter.new_gap:
            gap, counter.new_gap = counter.new_gap, []
            if self.lean and stream.rtx_payload_type is not None and self._egress is not None:
                self._egress.send_rtcp(build_nack(self._rtcp_ssrc, stream.ssrc, gap[-64:]))
                counter.nacks_sent += 1
        if stream.video_sampler is not None:
            stream.video_sampler.on_packet(view.sequence_number, view.marker, payload, stamp, arrival, view.timestamp)
        elif stream.audio_sampler is not None:
            stream.audio_sampler.on_packet(payload)
        return keep

    def _handle_rtcp(self, data: bytes) -> None:
        try:
            packets = parse_compound(data)
        except ValueError:
            return
        for packet in packets:
            if isinstance(packet, SenderReport):
                entry = self._by_ssrc.get(packet.ssrc)
                if entry is not None and not entry[1]:
                    stream = entry[0]
                    stream.counter.on_sender_report(packet.ntp_timestamp, packet.rtp_timestamp)
                    stream.last_sr_lsr = (packet.ntp_timestamp >> 16) & 0xFFFFFFFF
                    stream.last_sr_ms = monotonic_ms()

    def _tap_rtp(self, data: bytes) -> bool:
        return self._handle_rtp(data)  # slots not decoded ("stage") never reach aiortc's receivers

    def _tap_rtcp(self, data: bytes) -> bool:
        self._handle_rtcp(data)
        return True

    async def _on_rtp(self, data: bytes, arrival_time_ms: int = 0) -> None:
        self._handle_rtp(data)

    async def _on_rtcp(self, data: bytes) -> None:
        self._handle_rtcp(data)

    async def _run_rtcp(self) -> None:
        """Lean mode: receiver reports (aiortc's receivers are neutralized)."""
        try:
            while not self._closed:
                await asyncio.sleep(RTCP_INTERVAL_S * (0.5 + random.random()))
                blocks = [self._report_block(s) for s in self._streams.values() if s.counter.packets]
                for i in range(0, len(blocks), 31):
                    if self._egress is not None:
                        self._egress.send_rtcp(build_rr(self._rtcp_ssrc, blocks[i : i + 31]))
        except asyncio.CancelledError:
            pass

    def _report_block(self, stream: _Stream) -> ReportBlock:
        counter = stream.counter
        expected, lost = counter.expected, counter.lost
        interval_expected = expected - stream.reported_expected
        interval_lost = lost - stream.reported_lost
        stream.reported_expected, stream.reported_lost = expected, lost
        fraction = min(255, max(0, interval_lost * 256 // interval_expected)) if interval_expected > 0 else 0
        dlsr = 0
        if stream.last_sr_lsr:
            dlsr = min(0xFFFFFFFF, (monotonic_ms() - stream.last_sr_ms) * 65536 // 1000)
        return ReportBlock(stream.ssrc, fraction, lost, counter.highest_sequence, 0, stream.last_sr_lsr, dlsr)

    # -- decoded media (full mode) ----------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next((t for t in self._pc.getTransceivers() if t.receiver.track is track), None)
        if transceiver is None or transceiver.mid is None:
            return
        slot_id = self._slot_of_mid.get(transceiver.mid, f"mid-{transceiver.mid}")
        if not self._decodes(slot_id):
            return
        seams.decode_with_rtp_timestamps(transceiver.receiver)  # pts = the frame's RTP timestamp
        task = asyncio.ensure_future(self._read(track, slot_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, track: MediaStreamTrack, slot_id: str) -> None:
        try:
            while not self._closed:
                frame = await track.recv()
                stream = self._streams.get(slot_id)
                if stream is None:
                    continue
                if track.kind == "video":
                    timestamp = frame.pts & 0xFFFFFFFF if frame.pts is not None else None
                    stream.counter.on_decoded_video(frame, timestamp=timestamp)
                else:
                    stream.counter.on_decoded_audio(frame)
        except (MediaStreamError, asyncio.CancelledError):
            pass

    # -- report and lifecycle ---------------------------------------------------------------

    def reports(self) -> list[StreamReport]:
        return [s.counter.report(full_mode=not self.lean) for s in self._streams.values()]

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks) + ([self._rtcp_task] if self._rtcp_task else []):
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._rtcp_task] if self._rtcp_task else []), return_exceptions=True)
        if self._pc is not None:
            await self._pc.close()
