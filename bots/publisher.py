"""The publishing half of a bot: pre-encoded VP8 + Opus sent as real RTP, never encoding.

aiortc does ICE, DTLS, SRTP and SDP; its RTCRtpSender is neutralized (see
media.aiortc_seams), because for pre-encoded input it writes no audio-level extension, sends
every packet through three awaits and stamps its sender reports with the last send time instead
of the media time. Instead :class:`Publisher` paces the loops itself and sends through
``SrtpEgress``:

* audio: one stamped Opus packet every 20 ms with the RFC 6464 level of the loop packet (V bit
  set while speaking; switch with :attr:`speaking`), MID extension;
* video: one stamped VP8 frame every 1/fps s (RFC 7741 descriptor, 15-bit PictureID; for a
  layered loop, ``temporal_layers=3``, also TL0PICIDX, TID and the layer sync bit, all layers on
  one SSRC as a browser's L1T3), MID and abs-send-time extensions; a PLI/FIR restarts the loop
  at its keyframe; NACKs are answered with RTX from a history of the last 1024 packets (the
  payloads as sent, descriptors included);
* RTP timestamps are tied exactly to the schedule (packet k due at t0 + k·ptime carries
  base + k·ptime·clock), so the sender reports (every 0.5..1.5 s) are truthful;
* one shared 20 ms clock drives every publisher of the process (:mod:`bots.pacer`): video frames
  leave on the first tick at or after their due time (<= 20 ms pacing delay, in the stamp).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCRtpSender, RTCSessionDescription

from media import aiortc_seams as seams
from media.rtcp import Fir, Nack, Pli, ReceiverReport, SenderReport, build_sdes_cname, build_sr, parse_compound
from media.rtp_packet import ntp_now

from .errors import NegotiationError
from .media_files import AUDIO_PACKET_SAMPLES, PreEncodedMedia
from .pacer import Pacer
from .peer import configure_host_candidates, new_peer_connection
from .report import PublishReport
from .rtp_writer import (
    MAX_PAYLOAD,
    VP8_DESCRIPTOR_SIZE,
    VP8_TEMPORAL_DESCRIPTOR_SIZE,
    RtpWriter,
    abs_send_time_now,
    rtx_payload,
    split_vp8_frame,
    vp8_descriptors,
)
from .stamp import FLAG_KEYFRAME, FLAG_SPEAKING, now_us, opus_stamp_head, pack_stamp, source_tag

logger = logging.getLogger(__name__)

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
HISTORY = 1024
#: A lag beyond this (event loop stalled) skips ahead instead of bursting the backlog.
MAX_LAG_S = 0.25
KEYFRAME_HOLDOFF_S = 0.3


@dataclass
class _Stream:
    kind: str
    writer: RtpWriter
    clock_rate: int
    ts_base: int
    ssrc: int
    rtx: RtpWriter | None = None
    packets: int = 0
    octets: int = 0
    last_ts: int = 0
    history: list[tuple[int, int, int, bytes] | None] = field(default_factory=lambda: [None] * HISTORY)


class Publisher:
    """Offer with :meth:`offer`, apply the answer with :meth:`accept_answer`; sending starts as
    soon as the connection is up and stops at :meth:`close`."""

    def __init__(
        self,
        media: PreEncodedMedia,
        *,
        audio: bool = True,
        video: bool = True,
        speaking: bool = True,
        bind_addresses: list[str] | None = None,
        ice_servers: list[Any] | None = None,
        cname: str | None = None,
        identity: str | None = None,
    ) -> None:
        """``identity``: the participant id stamped into every packet and frame (:func:`bots.stamp.source_tag`),
        so that subscribers can tell whose media a slot carries; None: source 0."""
        if not (audio or video):
            raise ValueError("a publisher needs audio or video")
        self.media = media
        self.speaking = speaking
        self.identity = identity
        self.source = source_tag(identity)
        #: Speech packets still to send whatever :attr:`speaking` says (see :meth:`speak_packets`).
        self.burst_left = 0
        self.stats = PublishReport()
        self._want = [k for k, on in (("audio", audio), ("video", video)) if on]
        self._bind = bind_addresses or []
        self._ice_servers = ice_servers or []
        self._cname = cname or f"bot-{random.getrandbits(32):08x}"
        self._pc: Any = None
        self._egress: seams.SrtpEgress | None = None
        self._streams: dict[str, _Stream] = {}
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pacer: Pacer | None = None
        self._closed = False
        self._t0: float | None = None
        self._next_sr = 0.0
        self._k = self._f = self._index = 0
        self._keyframe_wanted = False
        self._last_keyframe_at = -1e9
        self._sr_sent: dict[int, float] = {}
        fps = media.params.fps
        self._frame_interval = 1 / fps
        #: Layered loop: descriptors carry TL0PICIDX / TID / Y; TL0PICIDX of the last TL0 frame sent.
        self._layered = media.params.temporal_layers > 1
        self._tl0picidx = random.randrange(256)
        descriptor_size = VP8_TEMPORAL_DESCRIPTOR_SIZE if self._layered else VP8_DESCRIPTOR_SIZE
        self._video_pieces = [split_vp8_frame(frame, MAX_PAYLOAD, descriptor_size) for frame in media.video]
        self._speech = [(opus_stamp_head(p.data), 0x80 | p.level) for p in media.speech]
        self._silence = [(opus_stamp_head(p.data), p.level) for p in media.silence]

    def set_identity(self, identity: str | None) -> None:
        """Stamp ``identity`` (a participant id) from the next packet on."""
        self.identity, self.source = identity, source_tag(identity)

    @property
    def peer_connection(self) -> Any:
        return self._pc

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState if self._pc is not None else "new"

    # -- negotiation ------------------------------------------------------------------------

    async def offer(self) -> str:
        """The SDP offer (sendonly Opus and/or VP8 with RTX)."""
        if self._pc is None:
            self._pc = new_peer_connection(self._ice_servers)
            self._pc.on("connectionstatechange", self._on_state)
            for kind in self._want:
                transceiver = self._pc.addTransceiver(kind, direction="sendonly")
                seams.neutralize_sender(transceiver.sender)
                seams.neutralize_receiver(transceiver.receiver)
                wanted = ("audio/opus",) if kind == "audio" else ("video/VP8", "video/rtx")
                caps = [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType in wanted]
                transceiver.setCodecPreferences(caps)
            configure_host_candidates(self._pc, self._bind)
        try:
            await self._pc.setLocalDescription(await self._pc.createOffer())
        except Exception as exc:
            raise NegotiationError(f"cannot create offer: {exc}") from exc
        return self._pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        """Apply the server's answer; media starts once ICE and DTLS are connected."""
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise NegotiationError(f"cannot apply answer: {exc}") from exc
        for transceiver in self._pc.getTransceivers():
            if transceiver.kind in self._streams or transceiver.currentDirection not in ("sendonly", "sendrecv"):
                continue
            self._streams[transceiver.kind] = self._make_stream(transceiver)
        if not self._streams:
            raise NegotiationError("the answer accepted none of the offered tracks")
        dtls = seams.dtls_transports(self._pc)[0]
        seams.install_packet_hooks(dtls, self._on_rtp, self._on_rtcp)
        if self._egress is None:
            self._egress = seams.SrtpEgress(dtls)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def _make_stream(self, transceiver: Any) -> _Stream:
        codecs, extensions = seams.negotiated_parameters(transceiver)
        ids = {e.uri: e.id for e in extensions}
        media = [c for c in codecs if c.name.lower() != "rtx"]
        expected = "opus" if transceiver.kind == "audio" else "vp8"
        if not media or media[0].name.lower() != expected:
            raise NegotiationError(f"{transceiver.kind} negotiated {media[0].name if media else 'nothing'}, not {expected}")
        codec = media[0]
        ssrc, rtx_ssrc = seams.sender_ssrcs(transceiver.sender)
        common = {"mid_id": ids.get(URI_MID, 0), "mid": transceiver.mid}
        writer = RtpWriter(
            ssrc=ssrc,
            payload_type=codec.payloadType,
            sequence_number=random.randrange(0, 0x8000),
            level_id=ids.get(URI_AUDIO_LEVEL, 0) if transceiver.kind == "audio" else 0,
            abs_id=ids.get(URI_ABS_SEND_TIME, 0) if transceiver.kind == "video" else 0,
            **common,
        )
        rtx = None
        rtx_pt = next((c.payloadType for c in codecs if c.name.lower() == "rtx" and c.parameters.get("apt") == codec.payloadType), None)
        if rtx_pt is not None:
            rtx = RtpWriter(ssrc=rtx_ssrc, payload_type=rtx_pt, sequence_number=random.randrange(0, 0x8000), **common)
        return _Stream(transceiver.kind, writer, codec.clockRate, random.getrandbits(32), ssrc, rtx)

    def _on_state(self) -> None:
        if self._pc is not None and self._pc.connectionState == "connected":
            self._connected.set()

    # -- sending ----------------------------------------------------------------------------

    async def _run(self) -> None:
        """Wait for the connection, then let the shared pacer drive :meth:`tick`."""
        try:
            await self._connected.wait()
            if not self._closed:
                self._pacer = Pacer.for_running_loop()
                self._pacer.add(self)
        except asyncio.CancelledError:
            pass

    def tick(self, now: float) -> None:
        """Send every packet due at ``now`` (loop time); called by the pacer every 20 ms."""
        if self._closed:
            return
        if self._t0 is None:
            self._t0 = now
            self._next_sr = now + 0.2
        t0 = self._t0
        audio, video = self._streams.get("audio"), self._streams.get("video")
        if audio is not None:
            if now - (t0 + self._k * 0.02) > MAX_LAG_S:
                self._k = int((now - t0) / 0.02)
                self.stats.late_skips += 1
            while now >= t0 + self._k * 0.02:
                self._send_audio(audio, self._k)
                self._k += 1
        if video is not None:
            if now - (t0 + self._f * self._frame_interval) > MAX_LAG_S:
                self._f = int((now - t0) / self._frame_interval)
                self.stats.late_skips += 1
            while now >= t0 + self._f * self._frame_interval:
                if self._keyframe_wanted:
                    self._index = 0
                    self._keyframe_wanted = False
                self._send_video(video, self._f, self._index)
                self._f += 1
                self._index = (self._index + 1) % len(self._video_pieces)
        if now >= self._next_sr:
            self._send_reports(now - t0)
            self._next_sr = now + 0.5 + random.random()

    def _send(self, stream: _Stream, data: bytes, payload_size: int) -> None:
        egress = self._egress
        if egress is not None and egress.send_rtp(data):
            stream.packets += 1
            stream.octets += payload_size
            self.stats.bytes_sent += len(data)
        else:
            self.stats.send_failures += 1

    @property
    def is_closed(self) -> bool:
        return self._closed

    def speak_packets(self, count: int) -> None:
        """Speak for exactly ``count`` audio packets (20 ms each), then go back to :attr:`speaking`:
        a burst measured in media, however late the caller's or the pacer's loop runs."""
        self.burst_left = count

    def _send_audio(self, stream: _Stream, k: int) -> None:
        speaking = self.speaking or self.burst_left > 0
        if self.burst_left > 0:
            self.burst_left -= 1
        loop = self._speech if speaking else self._silence
        index = k % len(loop)
        head, level = loop[index]
        flags = FLAG_SPEAKING if speaking else 0
        payload = head + pack_stamp(self.stats.audio_packets, index, flags, now_us(), self.source)
        ts = (stream.ts_base + k * AUDIO_PACKET_SAMPLES) & 0xFFFFFFFF
        stream.last_ts = ts
        self._send(stream, stream.writer.packet(payload, ts, marker=0, level=level), len(payload))
        self.stats.audio_packets += 1

    def _frame_descriptors(self, index: int, count: int) -> list[bytes]:
        """The RFC 7741 descriptors of loop frame ``index`` sent now (PictureID: the frame counter;
        layered: TL0PICIDX moves on with every TL0 frame, wrapping at 256)."""
        if not self._layered:
            return vp8_descriptors(self.stats.video_frames, count)
        tid = self.media.temporal_ids[index]
        if tid == 0:
            self._tl0picidx = (self._tl0picidx + 1) & 0xFF
        return vp8_descriptors(self.stats.video_frames, count, tl0picidx=self._tl0picidx, tid=tid,
                               layer_sync=self.media.layer_sync[index])

    def _send_video(self, stream: _Stream, f: int, index: int) -> None:
        pieces = self._video_pieces[index]
        keyframe = self.media.keyframes[index]
        descriptors = self._frame_descriptors(index, len(pieces))
        ts = (stream.ts_base + round(f * stream.clock_rate * self._frame_interval)) & 0xFFFFFFFF
        stream.last_ts = ts
        abs_send_time = abs_send_time_now()
        last = len(pieces) - 1
        writer = stream.writer
        for i, piece in enumerate(pieces):
            payload = descriptors[i] + piece
            if i == last:
                payload += pack_stamp(self.stats.video_frames, index, FLAG_KEYFRAME if keyframe else 0, now_us(),
                                      self.source)
            seq = writer.next_sequence()
            marker = 1 if i == last else 0
            stream.history[seq % HISTORY] = (seq, ts, marker, payload)
            self._send(stream, writer.packet(payload, ts, marker=marker, abs_send_time=abs_send_time, sequence_number=seq), len(payload))
            self.stats.video_packets += 1
        self.stats.video_frames += 1
        self.stats.frames_per_tid[self.media.temporal_ids[index]] += 1
        if keyframe:
            self.stats.keyframes_sent += 1

    def _send_reports(self, elapsed: float) -> None:
        egress = self._egress
        if egress is None:
            return
        ntp = ntp_now()
        for stream in self._streams.values():
            if not stream.packets:
                continue
            rtp_ts = (stream.ts_base + round(elapsed * stream.clock_rate)) & 0xFFFFFFFF
            report = build_sr(stream.ssrc, ntp, rtp_ts, stream.packets, stream.octets)
            if egress.send_rtcp(report + build_sdes_cname(stream.ssrc, self._cname)):
                self._sr_sent[(ntp >> 16) & 0xFFFFFFFF] = asyncio.get_running_loop().time()
                self.stats.sender_reports += 1
        if len(self._sr_sent) > 16:
            for key in list(self._sr_sent)[:-16]:
                del self._sr_sent[key]

    # -- feedback ---------------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """Restart the video loop at its keyframe with the next frame (throttled)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_keyframe_at >= KEYFRAME_HOLDOFF_S:
            self._keyframe_wanted = True
            self._last_keyframe_at = loop.time()

    def _retransmit(self, stream: _Stream, lost: list[int]) -> None:
        if stream.rtx is None:
            return
        for seq in lost:
            entry = stream.history[seq % HISTORY]
            if entry is None or entry[0] != seq:
                continue
            _, ts, marker, payload = entry
            self._send(stream, stream.rtx.packet(rtx_payload(seq, payload), ts, marker=marker), len(payload))
            self.stats.retransmitted += 1

    async def _on_rtp(self, data: bytes, arrival_time_ms: int = 0) -> None:
        """A sending-only connection receives no RTP; anything arriving is ignored."""

    async def _on_rtcp(self, data: bytes) -> None:
        try:
            packets = parse_compound(data)
        except ValueError:
            return
        video = self._streams.get("video")
        for packet in packets:
            if isinstance(packet, Nack) and video is not None and packet.media_ssrc == video.ssrc:
                self.stats.nacks_received += 1
                self._retransmit(video, packet.lost)
            elif isinstance(packet, (Pli, Fir)):
                self.stats.keyframe_requests += 1
                self.request_keyframe()
            elif isinstance(packet, (ReceiverReport, SenderReport)):
                for block in packet.reports:
                    for stream in self._streams.values():
                        if block.ssrc == stream.ssrc:
                            self.stats.upstream_fraction_lost[stream.kind] = block.fraction_lost / 256
                            sent = self._sr_sent.get(block.lsr)
                            if sent is not None and block.lsr:
                                rtt = asyncio.get_running_loop().time() - sent - block.dlsr / 65536
                                self.stats.rtt_ms = round(max(0.0, rtt) * 1000, 1)

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        self._closed = True
        if self._pacer is not None:
            self._pacer.remove(self)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._pc is not None:
            await self._pc.close()
