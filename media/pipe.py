"""Pipes: producers of one router mirrored in another, over one datagram flow (DESIGN.md, "Pipes and nodes").

The sending side (:class:`PipeSender`, at the centre for a provincial node) puts a :class:`PipeTap` on
each producer the far side wants: the producer's packets, as it forwards them (RTX unwrapped, RED
reduced to its primary), cross once, whatever the number of subscribers beyond. The receiving side
(:class:`PipeReceiver`) keeps a *mirror* :class:`~media.producer.Producer` per piped track, under the same
producer id, in its own router: local slots consume it like any producer.

Recovery is hop by hop. The mirror's NACK tracker asks for what the pipe lost, audio too; the sender
answers from its tap's history (a retransmission is the packet again, exactly as it crossed). The mirror's keyframe
requests cross at most once per :data:`PIPE_PLI_INTERVAL_MS` per stream (its PLI throttle), however many
local subscribers ask. The publisher's sender reports cross too (lip sync beyond the pipe), and the
receiver reports the mirrors' reception each :data:`REPORT_INTERVAL_MS` (the pipe's loss, for the
console). The track table that names what crosses (:class:`PipedTrack`) travels on a control
channel; the flow itself here is plain RTP/RTCP on a datagram callable (SRTP, the socket and the
NAT keep-alive belong to the transport around it, not built yet).

What crosses fits the link (:mod:`media.pipe_budget`): audio whole, each camera thinned to the
temporal layers its tap's target allows (:class:`~media.layer_thinning.LayerThinning`, as a slot thins
for a subscriber): a dropped packet takes no sequence number and a dropped frame no PictureID, so the
mirror sees no gap (no false NACK), and its history is kept by the number the packet crossed under.
:meth:`PipeSender.rebalance` sets the targets within the working limit, which the far side's receiver
reports move below the link's cap (:meth:`PipeSender.set_cap`).

Malformed datagrams are dropped and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from .errors import MediaError
from .history import PacketHistory
from .layer_rates import WIRE_OVERHEAD
from .layer_thinning import TOP_LAYER, LayerThinning
from .parameters import StreamParameters
from .pipe_budget import LinkLimit, choose_layers
from .producer import Producer
from .rewriter import ExtensionIds
from .rtcp import Fir, Nack, Pli, ReceiverReport, SenderReport, build_rr, build_sr, parse_compound
from .rtp_packet import HEADER, RTP_HEADER_LENGTH, RtpPacketView, monotonic_ms
from .vp8_descriptor import shift_picture_ids

#: At most one keyframe request per stream crosses the pipe per this long.
PIPE_PLI_INTERVAL_MS = 1000
#: How often the receiving side reports the mirrors' reception.
REPORT_INTERVAL_MS = 1000
#: A camera the cap stepped down goes up again no sooner than this (the layer above fitted by a hair, or a
#: keyframe's bytes made the rates look higher: without it, a camera near the limit flips every few seconds).
UP_AFTER_DOWN_MS = 10_000
#: The pipe's resend rate (what the cap's choice leaves room for) is sampled this often, and smoothed.
RESEND_SAMPLE_MS = 250
RESEND_ALPHA = 0.5
#: Round-trip samples the NACK spacing takes the least of.
RTT_SAMPLES = 6
#: The mirrors' history and NACK window (the pipe's round trip twice, and some: a WAN of 300 ms).
MIRROR_HISTORY_MS = 1500

Send = Callable[[bytes], Any]
_FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]


class PipeError(MediaError):
    """A piped track description is malformed."""


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192-223 in the second byte."""
    return len(data) > 1 and 192 <= data[1] <= 223


@dataclass(frozen=True)
class PipedTrack:
    """One track in the pipe's table: the same ids on both sides."""

    producer_id: str
    participant_id: str
    stream_id: str
    kind: str
    mid: str
    mime_type: str
    clock_rate: int
    channels: int | None
    payload_type: int
    ssrc: int
    ext_ids: ExtensionIds = field(default_factory=ExtensionIds)

    @classmethod
    def of(cls, producer: Producer) -> PipedTrack:
        if producer.ssrc is None:
            raise PipeError(f"{producer!r} has no SSRC yet: nothing to pipe")
        codec = producer.parameters.codec
        return cls(producer.id, producer.participant_id, producer.stream_id, producer.kind, producer.mid,
                   codec.mimeType, codec.clockRate, codec.channels, producer.payload_type, producer.ssrc,
                   producer.parameters.ext_ids)

    def to_dict(self) -> dict[str, Any]:
        ext = self.ext_ids
        return {"producer_id": self.producer_id, "participant_id": self.participant_id, "stream_id": self.stream_id,
                "kind": self.kind, "mid": self.mid, "mime_type": self.mime_type, "clock_rate": self.clock_rate,
                "channels": self.channels, "payload_type": self.payload_type, "ssrc": self.ssrc,
                "ext_ids": {"mid": ext.mid, "audio_level": ext.audio_level, "abs_send_time": ext.abs_send_time}}

    @classmethod
    def from_dict(cls, data: object) -> PipedTrack:
        if not isinstance(data, dict):
            raise PipeError("a piped track is an object")

        def text(name: str) -> str:
            value = data.get(name)
            if not isinstance(value, str) or not 0 < len(value) <= 128:
                raise PipeError(f"piped track {name} must be 1..128 characters")
            return value

        def number(name: str, low: int, high: int, *, optional: bool = False) -> int | None:
            value = data.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise PipeError(f"piped track {name} must be an integer {low}..{high}")
            return value

        kind = text("kind")
        if kind not in ("audio", "video"):
            raise PipeError("piped track kind must be audio or video")
        ext = data.get("ext_ids")
        if not isinstance(ext, dict) or not all(
                isinstance(ext.get(k), int) and not isinstance(ext.get(k), bool) and 0 <= ext[k] <= 14
                for k in ("mid", "audio_level", "abs_send_time")):
            raise PipeError("piped track ext_ids must give mid, audio_level and abs_send_time (0..14)")
        mime = text("mime_type")
        if mime.split("/")[0].lower() != kind:
            raise PipeError(f"piped track mime_type {mime!r} is not {kind}")
        return cls(text("producer_id"), text("participant_id"), text("stream_id"), kind, text("mid"), mime,
                   int(number("clock_rate", 1, 1_000_000) or 0), number("channels", 1, 8, optional=True),
                   int(number("payload_type", 0, 127) or 0), int(number("ssrc", 0, 0xFFFFFFFF) or 0),
                   ExtensionIds(mid=ext["mid"], audio_level=ext["audio_level"], abs_send_time=ext["abs_send_time"]))

    def parameters(self) -> StreamParameters:
        video = self.kind == "video"
        codec = RTCRtpCodecParameters(mimeType=self.mime_type, clockRate=self.clock_rate, channels=self.channels,
                                      payloadType=self.payload_type, rtcpFeedback=list(_FEEDBACK) if video else [])
        return StreamParameters(kind=self.kind, mid=self.mid, codec=codec, rtx_payload_type=None,
                                ext_ids=self.ext_ids, nack=True, pli=video)


@dataclass
class PipeStats:
    packets_sent: int = 0
    bytes_sent: int = 0
    retransmitted: int = 0
    #: Their bytes on the wire (each with the IP/UDP/SRTP overhead): the cap's choice leaves room for them.
    retransmitted_bytes: int = 0
    #: The resend rate the last choice left room for (bit/s, smoothed).
    retransmit_bps: int = 0
    retransmit_misses: int = 0
    keyframe_requests: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    malformed: int = 0
    unknown_ssrc: int = 0
    #: The far side's last reported loss (0..255) per SSRC.
    remote_loss: dict[int, int] = field(default_factory=dict)
    #: The highest loss (0..255) the receiving side's last report gave for one of its mirrors.
    received_loss: int = 0
    #: Report blocks the far side sent of streams this side sends it (the far side receives them).
    reports_received: int = 0
    #: The far side's cumulative count of packets lost per SSRC (what retransmission did not recover yet).
    remote_cumulative_lost: dict[int, int] = field(default_factory=dict)
    #: The far side's last report's loss (0..255) over the streams this side sends, weighted by packets.
    link_loss: int = 0
    #: Thinning (the sending side): packets of temporal layers above a tap's target not sent (their
    #: numbers closed up), changes up to a higher layer, late packets whose frame did not cross, and
    #: packets whose VP8 descriptor could not be renumbered.
    layer_drops: int = 0
    layer_switches: int = 0
    late_drops: int = 0
    malformed_drops: int = 0
    #: The link's configured cap and the working limit under it, kbit/s (0 / None: none).
    cap_kbps: int = 0
    limit_kbps: int | None = None
    #: The target temporal layer of each piped camera, by producer id (2: all of them).
    target_layers: dict[str, int] = field(default_factory=dict)
    #: Even audio and every camera's TL0 are above the limit: they cross anyway, at TL0.
    over_limit: bool = False


class PipeTap:
    """A producer's sink that sends its packets into the pipe (see the module docstring)."""

    def __init__(self, sender: PipeSender, producer: Producer, history_ms: int) -> None:
        self._sender = sender
        self.producer = producer
        self.closed = False
        #: What was sent, by the number it crossed under, for the far side's NACKs (audio too: a
        #: producer keeps video only).
        self.history = PacketHistory(history_ms)
        #: A camera's temporal layers (audio is never thinned).
        self.thinning: LayerThinning | None = None
        if producer.kind == "video":
            self.thinning = LayerThinning(sender.stats, producer.request_keyframe,
                                          codec_name=producer.parameters.codec_name)
        #: The newest sequence number sent (-1: none yet).
        self._max_seq = -1
        #: When the camera was last stepped down (monotonic ms), and its rank then: it goes up again only
        #: UP_AFTER_DOWN_MS later, unless its rank rose meanwhile (it took the floor).
        self.lowered_ms: int | None = None
        self.rank = 0
        #: Packets sent, and as many when the far side last reported (its loss is weighted by them).
        self.packets_sent = 0
        self.reported_packets = 0
        self._out = RtpPacketView()

    @property
    def forwarding(self) -> bool:
        return not self.closed and self.producer.forwarding

    @property
    def target_layer(self) -> int:
        return self.thinning.target if self.thinning is not None else TOP_LAYER

    def set_target(self, layer: int) -> None:
        """Send a camera's temporal layers 0..``layer`` (down at the next frame boundary, up at the next
        layer-sync frame or keyframe); audio has no layers."""
        thin = self.thinning
        if thin is None or layer == thin.target:
            return
        if not 0 <= layer <= TOP_LAYER:
            raise PipeError(f"a piped camera's layer is 0..{TOP_LAYER}, not {layer}")
        newest = (self._max_seq - thin.seq_offset) & 0xFFFF if self._max_seq >= 0 else 0
        thin.change_target(layer, newest)

    def forward(self, packet: RtpPacketView, abs_send_time: bytes) -> None:
        seq = packet.sequence_number
        pid_offset = 0
        thin = self.thinning
        if thin is not None:
            if self._max_seq < 0:
                self._max_seq = (seq - 1) & 0xFFFF
                thin.restart(seq, 0, 0)
            if packet.tid > thin.pass_tid and not thin.keep(packet, self._max_seq):
                return
            seq = (seq + thin.seq_offset) & 0xFFFF
            pid_offset = thin.pid_offset
            if (self._max_seq - seq) & 0xFFFF < 0x8000:  # not newer than the newest sent: late, or again
                placed = thin.place_late(packet, seq)
                if placed is None:
                    self._sender.stats.late_drops += 1
                    return
                seq, pid_offset = placed
            else:
                self._max_seq = seq
            thin.kept_ts = packet.timestamp
        data = packet.data
        kept = packet
        if seq != packet.sequence_number or pid_offset or data[1] & 0x7F != packet.payload_type:
            rebuilt = self._rebuild(packet, seq, pid_offset)
            if rebuilt is None:
                self._sender.stats.malformed_drops += 1
                return
            data = rebuilt
            kept = RtpPacketView()
            kept.data = data
            kept.sequence_number = seq
            kept.arrival_ms = packet.arrival_ms
        self.history.store(kept)
        self.packets_sent += 1
        self._sender.send_packet(data)

    def _rebuild(self, packet: RtpPacketView, seq: int, pid_offset: int) -> bytes | None:
        """The bytes of ``packet`` as it crosses: under sequence number ``seq``, its PictureID moved by
        ``pid_offset``, and as the producer forwards it (an RTX packet unwrapped, RED reduced to its
        primary): the header's SSRC, payload type and marker are the view's; its extensions are kept."""
        body = packet.body
        if pid_offset:
            try:
                body = shift_picture_ids(packet, self._out, pid_offset, 0)[0].body
            except ValueError:
                return None
        data = packet.data
        head_end = packet.ext_end or RTP_HEADER_LENGTH + 4 * (data[0] & 0x0F)
        b0 = (data[0] & 0xDF) | (0x20 if packet.padding_size else 0)
        head = HEADER.pack(b0, (packet.marker << 7) | packet.payload_type, seq, packet.timestamp, packet.ssrc)
        return b"".join((head, data[RTP_HEADER_LENGTH:head_end], body))

    def on_producer_state(self) -> None:
        self.producer.refresh_active()

    def send_sender_report(self) -> None:
        sr, producer = self.producer.last_sr, self.producer
        if sr is not None and producer.ssrc is not None:
            self._sender.send_rtcp(build_sr(producer.ssrc, sr.ntp_timestamp, sr.rtp_timestamp,
                                            producer.stats.packets, producer.stats.bytes))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self in self.producer.sinks:
            self.producer.sinks.remove(self)
        self.producer.refresh_active()
        self._sender.forget(self)


class PipeSender:
    """The sending end: producers tapped into the pipe, the far side's feedback answered."""

    def __init__(self, send: Send, *, history_ms: int = MIRROR_HISTORY_MS) -> None:
        self._send = send
        self._history_ms = history_ms
        self.taps: dict[str, PipeTap] = {}
        self._by_ssrc: dict[int, PipeTap] = {}
        #: A camera stepped down goes up again no sooner than this (ms).
        self.up_after_down_ms = UP_AFTER_DOWN_MS
        self.stats = PipeStats()
        #: The working limit of what crosses (media/pipe_budget.py), under the link's cap.
        self.limit = LinkLimit()
        self._reported = (0, 0, monotonic_ms())  # bytes and packets sent at the last report, and when
        self._resent: tuple[int, int] | None = None  # retransmitted bytes at the last resend sample, and when
        self._resend_bps = 0.0

    def set_cap(self, kbps: int) -> None:
        """The link's configured rate in this direction, kbit/s (0: none); raises PipeError when out of
        range (nothing changes)."""
        try:
            self.limit.set_cap(kbps)
        except ValueError as exc:
            raise PipeError(str(exc)) from None
        self.stats.cap_kbps = self.limit.cap_kbps
        self.stats.limit_kbps = self._kbps(self.limit.limit_bps)
        for tap in self.taps.values():  # a new cap: every camera may go where it fits at once
            tap.lowered_ms = None

    @staticmethod
    def _kbps(bps: int | None) -> int | None:
        return None if bps is None else bps // 1000

    def rebalance(self, rank: Mapping[str, int], now_ms: int | None = None) -> None:
        """Each camera's target layer within the working limit (media/pipe_budget.py): ``rank`` orders the
        participants whose cameras take the upper layers first (the floor holder 0, then the latest
        speakers); the others follow, by producer id."""
        now = monotonic_ms() if now_ms is None else now_ms
        audio = 0
        cameras: list[tuple[tuple[int, str], str, tuple[int, ...]]] = []
        for tap in self.taps.values():
            producer = tap.producer
            if not tap.forwarding:
                continue
            rates = producer.layer_rates.sample(now)
            if tap.thinning is None:
                audio += rates[-1]
            else:
                cameras.append(((rank.get(producer.participant_id, len(rank)), producer.id), producer.id, rates))
        cameras.sort()
        current = {pid: self.taps[pid].target_layer for _, pid, _ in cameras}
        limit = self.limit.limit_bps
        if limit is not None:  # the pipe's own resends take part of the link: the layers fit in the rest
            limit = max(0, limit - self._resend_rate(now))
        choice = choose_layers(limit, audio, [(pid, rates) for _, pid, rates in cameras], current)
        ranks = {pid: order for (order, _), pid, _ in cameras}
        for pid, layer in choice.layers.items():
            tap = self.taps[pid]
            if layer < tap.target_layer:
                tap.lowered_ms = now
            elif (layer > tap.target_layer and tap.lowered_ms is not None and ranks[pid] >= tap.rank
                  and now - tap.lowered_ms < self.up_after_down_ms):
                layer = choice.layers[pid] = tap.target_layer  # not straight back up (a keyframe's bytes
                # looked like a higher rate, and the layer above does not fit by a hair)
            tap.rank = ranks[pid]
            tap.set_target(layer)
        self.limit.floor_bps, self.limit.full_bps = choice.floor_bps, choice.full_bps
        stats = self.stats
        stats.target_layers = dict(choice.layers)
        stats.over_limit = choice.over_limit
        stats.limit_kbps = self._kbps(self.limit.limit_bps)

    def _resend_rate(self, now: int) -> int:
        """The bit/s the pipe resends (NACKs answered), smoothed over samples at least RESEND_SAMPLE_MS apart."""
        sent = self.stats.retransmitted_bytes
        if self._resent is None:
            self._resent = (sent, now)
        elif now - self._resent[1] >= RESEND_SAMPLE_MS:
            rate = (sent - self._resent[0]) * 8000 / (now - self._resent[1])
            self._resend_bps = (1 - RESEND_ALPHA) * self._resend_bps + RESEND_ALPHA * rate
            self._resent = (sent, now)
        self.stats.retransmit_bps = int(self._resend_bps)
        return int(self._resend_bps)

    def attach(self, producer: Producer) -> PipedTrack:
        """Send ``producer`` into the pipe (idempotent); its track for the far side's table."""
        track = PipedTrack.of(producer)
        if producer.id not in self.taps:
            tap = PipeTap(self, producer, self._history_ms)
            self.taps[producer.id] = tap
            self._by_ssrc[track.ssrc] = tap
            producer.sinks.append(tap)
            producer.refresh_active()
            producer.on("close", tap.close)
            if producer.kind == "video":
                producer.request_keyframe()  # the far side starts with a picture it can decode
        return track

    def detach(self, producer_id: str) -> None:
        tap = self.taps.get(producer_id)
        if tap is not None:
            tap.close()

    def forget(self, tap: PipeTap) -> None:
        if self.taps.get(tap.producer.id) is tap:
            del self.taps[tap.producer.id]
        if tap.producer.ssrc is not None and self._by_ssrc.get(tap.producer.ssrc) is tap:
            del self._by_ssrc[tap.producer.ssrc]

    def close(self) -> None:
        for tap in list(self.taps.values()):
            tap.close()

    def send_packet(self, data: bytes) -> None:
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(data)
        self._send(data)

    def send_rtcp(self, data: bytes) -> None:
        self._send(data)

    def handle_rtcp(self, data: bytes, now_ms: int | None = None) -> None:
        """Feedback from the far side: NACKs answered from history, keyframe requests passed on, receiver
        reports followed by the working limit."""
        try:
            packets = parse_compound(data)
        except ValueError:
            self.stats.malformed += 1
            return
        now = monotonic_ms() if now_ms is None else now_ms
        for packet in packets:
            if isinstance(packet, Nack):
                tap = self._by_ssrc.get(packet.media_ssrc)
                history = tap.history if tap is not None else None
                for seq in packet.lost:
                    kept = history.get(seq, now) if history is not None else None
                    if kept is None:
                        self.stats.retransmit_misses += 1
                    else:
                        self.stats.retransmitted += 1
                        self.stats.retransmitted_bytes += len(kept.data) + WIRE_OVERHEAD
                        self._send(kept.data)
            elif isinstance(packet, (Pli, Fir)):
                ssrcs = [packet.media_ssrc] if isinstance(packet, Pli) else [s for s, _ in packet.entries]
                for ssrc in ssrcs:
                    tap = self._by_ssrc.get(ssrc)
                    if tap is not None:
                        self.stats.keyframe_requests += 1
                        tap.producer.request_keyframe()
            elif isinstance(packet, ReceiverReport):
                weighted = counted = 0
                for block in packet.reports:
                    tap = self._by_ssrc.get(block.ssrc)
                    if tap is not None:
                        self.stats.remote_loss[block.ssrc] = block.fraction_lost
                        self.stats.remote_cumulative_lost[block.ssrc] = block.packets_lost
                        self.stats.reports_received += 1
                        sent, tap.reported_packets = tap.packets_sent - tap.reported_packets, tap.packets_sent
                        weighted += block.fraction_lost * sent
                        counted += sent
                if counted:
                    self._on_loss(weighted // counted, now)

    def _on_loss(self, loss: int, now: int) -> None:
        """The far side's loss over what crossed since its last report: the working limit follows."""
        stats = self.stats
        sent_bytes, sent_packets, then = self._reported
        if now - then <= 0:
            return
        crossed_bps = ((stats.bytes_sent - sent_bytes) + WIRE_OVERHEAD * (stats.packets_sent - sent_packets)) \
            * 8000 / (now - then)
        if self.limit.on_report(loss, crossed_bps, now):
            self._reported = (stats.bytes_sent, stats.packets_sent, now)
            stats.link_loss = loss
            stats.limit_kbps = self._kbps(self.limit.limit_bps)


class PipeReceiver:
    """The receiving end: a mirror producer per piped track, fed from the pipe, its feedback sent back."""

    def __init__(self, send: Send, add_producer: Callable[[Producer], None] | None = None, *,
                 rtcp_ssrc: int = 0x5049_5045, history_ms: int = MIRROR_HISTORY_MS, tag: str = "") -> None:
        self._send = send
        self._add_producer = add_producer
        #: Marks this pipe's mirrors (``app_data["pipe"]``): what came through a pipe is never sent back into it.
        self.tag = tag
        self._rtcp_ssrc = rtcp_ssrc
        self._history_ms = history_ms
        self.mirrors: dict[str, Producer] = {}
        self._by_ssrc: dict[int, Producer] = {}
        self._rtt_ms: float | None = None
        self._rtt_samples: collections.deque[float] = collections.deque(maxlen=RTT_SAMPLES)
        self.stats = PipeStats()
        self._report_task: asyncio.Task[None] | None = None

    def add(self, track: PipedTrack, into: Callable[[Producer], None] | None = None) -> Producer:
        """The mirror of ``track`` (created, and handed to ``into`` (a router's ``add_producer``), else to
        the receiver's ``add_producer``, the first time)."""
        add_producer = into or self._add_producer
        if add_producer is None:
            raise PipeError("no router to add the mirror to")
        mirror = self.mirrors.get(track.producer_id)
        if mirror is not None:
            return mirror
        if track.ssrc in self._by_ssrc:
            raise PipeError(f"SSRC {track.ssrc} is already piped")
        mirror = Producer(producer_id=track.producer_id, participant_id=track.participant_id,
                          stream_id=track.stream_id, parameters=track.parameters(), ssrc=track.ssrc, rtx_ssrc=None,
                          rtcp_ssrc=self._rtcp_ssrc, send_rtcp=self._send, rtx_history_ms=self._history_ms,
                          pli_throttle_ms=PIPE_PLI_INTERVAL_MS, app_data={"piped": True, "pipe": self.tag})
        if self._rtt_ms is not None:
            mirror.upstream_rtt_ms = self._rtt_ms
        self.mirrors[track.producer_id] = mirror
        self._by_ssrc[track.ssrc] = mirror
        mirror.on("close", lambda: self._forget(mirror))
        add_producer(mirror)
        if self._report_task is None:
            self._report_task = asyncio.ensure_future(self._report())
        return mirror

    def set_rtt(self, rtt_ms: float) -> None:
        """A round trip of the pipe (measured on its control channel): a mirror NACKs a hole once per round
        trip, not once per default 100 ms (three requests, three retransmissions, on a 300 ms WAN). The
        least of the last few samples: a ping the TCP channel itself had to retransmit reads 800 ms on a
        300 ms link, and NACKs that far apart get fewer tries before a hole is given up."""
        self._rtt_samples.append(rtt_ms)
        self._rtt_ms = max(20.0, min(self._rtt_samples) * 1.2)
        for mirror in self.mirrors.values():
            mirror.upstream_rtt_ms = self._rtt_ms

    def remove(self, producer_id: str) -> None:
        mirror = self.mirrors.get(producer_id)
        if mirror is not None:
            mirror.close()

    def _forget(self, mirror: Producer) -> None:
        self.mirrors.pop(mirror.id, None)
        if mirror.ssrc is not None and self._by_ssrc.get(mirror.ssrc) is mirror:
            del self._by_ssrc[mirror.ssrc]

    def close(self) -> None:
        for mirror in list(self.mirrors.values()):
            mirror.close()
        if self._report_task is not None:
            self._report_task.cancel()
            self._report_task = None

    def handle_datagram(self, data: bytes, arrival_ms: int | None = None) -> None:
        if is_rtcp(data):
            self._handle_rtcp(data)
            return
        try:
            packet = RtpPacketView.parse(data, monotonic_ms() if arrival_ms is None else arrival_ms)
        except ValueError:
            self.stats.malformed += 1
            return
        mirror = self._by_ssrc.get(packet.ssrc)
        if mirror is None:
            self.stats.unknown_ssrc += 1
            return
        self.stats.packets_received += 1
        self.stats.bytes_received += len(data)
        mirror.handle_rtp(packet)

    def _handle_rtcp(self, data: bytes) -> None:
        try:
            packets = parse_compound(data)
        except ValueError:
            self.stats.malformed += 1
            return
        for packet in packets:
            if isinstance(packet, SenderReport):
                mirror = self._by_ssrc.get(packet.ssrc)
                if mirror is not None:
                    mirror.handle_sender_report(packet)

    def report(self) -> None:
        """A receiver report of every mirror's reception (sent each REPORT_INTERVAL_MS)."""
        blocks = [b for b in (m.report_block() for m in self.mirrors.values()) if b is not None]
        self.stats.received_loss = max((b.fraction_lost for b in blocks), default=0)
        for start in range(0, len(blocks), 31):
            self._send(build_rr(self._rtcp_ssrc, blocks[start:start + 31]))

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL_MS / 1000)
            self.report()


class Pipe:
    """Both directions of one pipe over one datagram flow: the producers this side sends (``sender``)
    and the mirrors of what the far side sends (``receiver``). RTCP goes to both: NACKs, keyframe
    requests and receiver reports concern this side's taps, sender reports the mirrors."""

    def __init__(self, send: Send, *, tag: str = "", history_ms: int = MIRROR_HISTORY_MS) -> None:
        self.sender = PipeSender(send, history_ms=history_ms)
        self.receiver = PipeReceiver(send, tag=tag, history_ms=history_ms)

    def handle_datagram(self, data: bytes) -> None:
        if is_rtcp(data):
            self.sender.handle_rtcp(data)
        self.receiver.handle_datagram(data)

    def close(self) -> None:
        self.sender.close()
        self.receiver.close()
