"""Producer: one published track (an m-line of a participant's sending peer connection)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import EventEmitter
from .history import PacketHistory
from .layer_rates import LayerRates
from .nack import NackTracker
from .parameters import StreamParameters
from .receive_stats import ReceiveStats
from .red import primary_of
from .rtcp import ReportBlock, SenderReport, build_nack, build_pli
from .rtp_packet import RtpPacketView, abs_send_time_now, monotonic_ms
from .vp8_descriptor import read_temporal

logger = logging.getLogger(__name__)

#: Assumed upstream round-trip time until better known (NACK retry pacing).
DEFAULT_RTT_MS = 100


class Sink(Protocol):
    """What a producer fans its packets out to (a slot's tap, :class:`media.slot.SlotTap`)."""

    forwarding: bool
    forward: Callable[[RtpPacketView, bytes], None]

    def on_producer_state(self) -> None: ...

    def send_sender_report(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class ProducerStats:
    packets: int = 0
    bytes: int = 0
    rtx_packets: int = 0
    dropped_payload_type: int = 0
    dropped_muted: int = 0
    nacks_sent: int = 0
    nacked_packets: int = 0
    keyframe_requests: int = 0
    keyframe_requests_throttled: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SrMapping:
    """The publisher's last sender report: NTP time <-> RTP timestamp of this stream."""

    ntp_timestamp: int
    rtp_timestamp: int
    received_ms: int


class Producer(EventEmitter):
    """Receives one publisher stream and fans its packets out to its sinks (slots).

    Events: ``close`` (), ``pause`` (), ``resume`` (), ``mute`` (muted: bool),
    ``keyframerequest`` () when a PLI is actually sent upstream, ``score`` is not implemented.
    """

    def __init__(
        self,
        *,
        producer_id: str,
        participant_id: str,
        stream_id: str,
        parameters: StreamParameters,
        ssrc: int | None,
        rtx_ssrc: int | None,
        rtcp_ssrc: int,
        send_rtcp: Callable[[bytes], bool],
        rtx_history_ms: int,
        pli_throttle_ms: int,
        on_audio_level: Callable[[Producer, int, int, float], None] | None = None,
        app_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.id = producer_id
        self.participant_id = participant_id
        self.stream_id = stream_id
        self.parameters = parameters
        self.kind = parameters.kind
        self.mid = parameters.mid
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.app_data = app_data or {}
        self.payload_type = parameters.payload_type
        self.rtx_payload_type = parameters.rtx_payload_type
        self.closed = False
        self.paused = False
        self.muted = False
        self.stats = ProducerStats()
        self.last_sr: SrMapping | None = None
        #: Where packets go: the taps of the slots carrying (or waiting for) this producer.
        self.sinks: list[Sink] = []
        self._active: tuple[Sink, ...] = ()
        self._rtcp_ssrc = rtcp_ssrc
        self._send_rtcp = send_rtcp
        self._pli_throttle_ms = pli_throttle_ms
        self._last_pli_ms = -(10**9)
        self._on_audio_level = on_audio_level
        self._level_id = parameters.ext_ids.audio_level if self.kind == "audio" else 0
        self._clock_rate = parameters.clock_rate or 48000
        self._level_ts: int | None = None
        self._needs_abs = self.kind == "video"
        self._vp8 = parameters.codec_name.upper() == "VP8"
        self._red_pt = parameters.red_payload_type if parameters.red_payload_type is not None else -1
        #: Bytes and packets received per VP8 temporal layer (TID 0..3), for the layer rates a budget
        #: needs (:attr:`layer_rates`); everything is layer 0 without layers (and for audio).
        self.layer_bytes = [0, 0, 0, 0]
        self.layer_packets = [0, 0, 0, 0]
        self.layer_rates = LayerRates(self)
        #: Temporal layers seen in the stream (1 until a packet with TID > 0 arrives).
        self.temporal_layers = 1
        #: The worst loss (0..255, RTCP's fraction) its subscribers report for it: an audio
        #: publisher's receiver report carries it, so its Opus encoder spends on in-band FEC for the
        #: sites that lose packets, not only for its own uplink (media/watchers.py sets it).
        self.downstream_loss = 0
        self._receive_stats = ReceiveStats(parameters.clock_rate)
        video = self.kind == "video"
        self.history: PacketHistory | None = PacketHistory(rtx_history_ms) if video else None
        # NACKs for what negotiated them: a browser's video; any piped track (media/pipe.py), audio too
        #: The round trip to whoever retransmits for this producer: NACKs for a hole are this far apart
        #: (a pipe's mirror is told its WAN's: media/pipe.py).
        self.upstream_rtt_ms: float = DEFAULT_RTT_MS
        self._nack: NackTracker | None = (
            NackTracker(max_age_ms=min(rtx_history_ms, 1000)) if parameters.nack else None
        )
        self._nack_timer: asyncio.TimerHandle | None = None
        self._pli_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"Producer({self.id!r}, {self.kind}, participant={self.participant_id!r})"

    # -- forwarding -------------------------------------------------------------------------

    def handle_rtp(self, packet: RtpPacketView) -> None:
        """One decrypted packet of this producer's SSRC or RTX SSRC (hot path)."""
        if packet.payload_type != self.payload_type:
            if packet.payload_type == self._red_pt:
                # RED from the publisher: forwarded as its primary block (a slot adds its own
                # redundancy for a lossy site that negotiated RED; others could not decode RED).
                try:
                    block_pt, primary = primary_of(packet.payload)
                except ValueError:
                    self.stats.dropped_payload_type += 1
                    return
                if block_pt != self.payload_type:
                    self.stats.dropped_payload_type += 1
                    return
                packet.replace_payload(self.payload_type, primary)
            elif packet.payload_type != self.rtx_payload_type or self.rtx_payload_type is None:
                self.stats.dropped_payload_type += 1
                return
            else:
                try:
                    packet.unwrap_rtx(self.payload_type, self.ssrc or 0)
                except ValueError:
                    self.stats.dropped_payload_type += 1  # padding-only RTX (bandwidth probing)
                    return
                self.stats.rtx_packets += 1
        stats = self.stats
        stats.packets += 1
        stats.bytes += len(packet.data)
        if self._vp8:
            read_temporal(packet)
        tid = packet.tid
        self.layer_bytes[tid] += len(packet.data)
        self.layer_packets[tid] += 1
        if tid >= self.temporal_layers:
            self.temporal_layers = tid + 1
        now = packet.arrival_ms
        self._receive_stats.add(packet.sequence_number, packet.timestamp, now)
        nack = self._nack
        if nack is not None and nack.add(packet.sequence_number, now):
            self._send_nacks(now)
        if self.history is not None:
            self.history.store(packet)
        if self._level_id:
            try:
                value = packet.extension(self._level_id)
            except ValueError:
                value = None
            if value:
                packet.audio_level = value[0]
                if self._on_audio_level is not None and not (self.muted or self.paused):
                    self._on_audio_level(self, value[0] & 0x7F, now, self._media_ms(packet.timestamp))
        if self.muted or self.paused:
            stats.dropped_muted += 1
            return
        sinks = self._active
        if sinks:
            abs_send_time = abs_send_time_now() if self._needs_abs else b""
            for sink in sinks:
                sink.forward(packet, abs_send_time)

    def _media_ms(self, timestamp: int) -> float:
        """How much audio this packet carries, from the RTP timestamp step (the dominant-speaker
        detector accounts media time, not arrival time). 20 ms when the step is not a plain one
        (first packet, reordering, a DTX gap)."""
        last, self._level_ts = self._level_ts, timestamp
        if last is None:
            return 20.0
        step = ((timestamp - last) & 0xFFFFFFFF) * 1000 / self._clock_rate
        if 0 < step <= 120:
            return step
        if step > 0x7FFFFFFF * 1000 / self._clock_rate:  # an older packet, late: keep the newer stamp
            self._level_ts = last
        return 20.0

    def refresh_active(self) -> None:
        """Recompute which sinks get packets (call after any sink state change)."""
        self._active = tuple(c for c in self.sinks if c.forwarding)

    # -- feedback ---------------------------------------------------------------------------

    def request_keyframe(self) -> bool:
        """Send a PLI upstream, at most one per ``pli_throttle_ms``; True if one was sent now.

        A throttled request is not lost: one PLI is sent when the throttle window ends.
        """
        if self.closed or self.ssrc is None or self.kind != "video":
            return False
        now = monotonic_ms()
        wait_ms = self._last_pli_ms + self._pli_throttle_ms - now
        if wait_ms > 0:
            self.stats.keyframe_requests_throttled += 1
            if self._pli_timer is None:
                loop = asyncio.get_running_loop()
                self._pli_timer = loop.call_later(wait_ms / 1000, self._on_pli_timer)
            return False
        self._last_pli_ms = now
        self.stats.keyframe_requests += 1
        self._send_rtcp(build_pli(self._rtcp_ssrc, self.ssrc))
        self.emit("keyframerequest")
        return True

    def _on_pli_timer(self) -> None:
        self._pli_timer = None
        self.request_keyframe()

    def _send_nacks(self, now: int) -> None:
        nack = self._nack
        if nack is None or self.closed or self.ssrc is None:
            return
        lost = nack.due(now, self.upstream_rtt_ms)
        if lost:
            self.stats.nacks_sent += 1
            self.stats.nacked_packets += len(lost)
            self._send_rtcp(build_nack(self._rtcp_ssrc, self.ssrc, lost))
        if nack.keyframe_needed:
            nack.keyframe_needed = False
            self.request_keyframe()
        if nack.missing and self._nack_timer is None:
            loop = asyncio.get_running_loop()
            self._nack_timer = loop.call_later(0.02, self._on_nack_timer)

    def _on_nack_timer(self) -> None:
        self._nack_timer = None
        self._send_nacks(monotonic_ms())

    def handle_sender_report(self, report: SenderReport) -> None:
        self.last_sr = SrMapping(report.ntp_timestamp, report.rtp_timestamp, monotonic_ms())
        for sink in self._active:
            sink.send_sender_report()

    def report_block(self) -> ReportBlock | None:
        """Receiver report block for the upstream RR (None before the first packet)."""
        if self.ssrc is None or self._receive_stats.received == 0:
            return None
        lsr = dlsr = 0
        if self.last_sr is not None:
            lsr = (self.last_sr.ntp_timestamp >> 16) & 0xFFFFFFFF
            dlsr = min(0xFFFFFFFF, (monotonic_ms() - self.last_sr.received_ms) * 65536 // 1000)
        block = self._receive_stats.report_block(self.ssrc, lsr, dlsr)
        if self.downstream_loss > block.fraction_lost:
            block = dataclasses.replace(block, fraction_lost=self.downstream_loss)
        return block

    @property
    def receive_stats(self) -> ReceiveStats:
        return self._receive_stats

    @property
    def nack_tracker(self) -> NackTracker | None:
        return self._nack

    # -- control ----------------------------------------------------------------------------

    def pause(self) -> None:
        """The publisher paused the track (client-side mute): stop forwarding."""
        if not self.paused and not self.closed:
            self.paused = True
            for sink in self.sinks:
                sink.on_producer_state()
            self.emit("pause")

    def resume(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            for sink in self.sinks:
                sink.on_producer_state()
            self.emit("resume")

    def set_muted(self, muted: bool) -> None:
        """Server-side mute: packets are still received (and NACKed) but not forwarded."""
        if self.muted != muted and not self.closed:
            self.muted = muted
            for sink in self.sinks:
                sink.on_producer_state()
            self.emit("mute", muted)

    @property
    def forwarding(self) -> bool:
        return not (self.closed or self.paused or self.muted)

    def close(self) -> None:
        """Close the producer and, cascading, its sinks. Emits ``close`` once."""
        if self.closed:
            return
        self.closed = True
        for timer in (self._nack_timer, self._pli_timer):
            if timer is not None:
                timer.cancel()
        self._nack_timer = self._pli_timer = None
        for sink in list(self.sinks):
            sink.close()
        self._active = ()
        self.emit("close")
        self.remove_all_listeners()
