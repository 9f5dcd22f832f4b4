"""Consumer: one producer's stream as sent to one subscriber (an m-line of its receiving connection)."""

from __future__ import annotations

import logging
import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UnsupportedError
from .events import EventEmitter
from .keyframe import is_keyframe
from .parameters import StreamParameters
from .rewriter import RtpRewriter
from .round_trip import RoundTrip
from .rtcp import ReportBlock, build_sdes_cname, build_sr
from .rtp_packet import RtpPacketView, abs_send_time_now, monotonic_ms

if TYPE_CHECKING:
    from .producer import Producer

logger = logging.getLogger(__name__)

_OSN = struct.Struct("!H")
_MAX_EPOCHS = 16


@dataclass
class ConsumerStats:
    packets_sent: int = 0
    bytes_sent: int = 0
    payload_bytes_sent: int = 0
    send_failures: int = 0
    nacks_received: int = 0
    nacked_packets: int = 0
    retransmitted: int = 0
    retransmit_misses: int = 0
    keyframe_requests_received: int = 0
    waiting_keyframe_drops: int = 0
    sender_reports_sent: int = 0
    fraction_lost: int = 0
    round_trip_time_ms: float | None = None
    remb_bitrate: int | None = None


class Consumer(EventEmitter):
    """Rewrites a producer's packets (SSRC, sequence number, timestamp, payload type, header
    extensions) for one subscriber, answers its NACKs from the producer's history and relays its
    keyframe requests upstream.

    Sequence numbers stay contiguous across pauses: each (re)start opens an *epoch* with new
    offsets, continuing where the previous epoch ended; video (re)starts on a keyframe.

    Events: ``close`` (), ``producerclose`` (), ``pause`` (), ``resume`` (),
    ``active`` (forwarding: bool) whenever packets start or stop flowing.
    """

    def __init__(
        self,
        *,
        consumer_id: str,
        subscriber_id: str,
        producer: Producer,
        ssrc: int,
        rtx_ssrc: int,
        cname: str,
        send_rtp: Callable[[bytes], bool],
        send_rtcp: Callable[[bytes], bool],
        on_close: Callable[[Consumer], None],
        paused: bool = False,
        app_data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.id = consumer_id
        self.subscriber_id = subscriber_id
        self.producer = producer
        self.producer_id = producer.id
        self.kind = producer.kind
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.app_data = app_data or {}
        self.cname = cname
        self.parameters: StreamParameters | None = None
        self.mid: str | None = None
        self.closed = False
        self.paused = paused
        self.last_n_active = True
        self.stats = ConsumerStats()
        self._send_rtp = send_rtp
        self._send_rtcp = send_rtcp
        self._on_close = on_close
        self._rewriter: RtpRewriter | None = None
        self._rtx_pt: int | None = None
        self._clock_rate = producer.parameters.clock_rate
        self._codec_name = producer.parameters.codec_name
        self._video = self.kind == "video"
        self.forwarding = False
        # epoch state
        self._started = False
        self._ever_started = False
        self._seq_offset = 0
        self._ts_offset = 0
        self._epoch_start = 0
        self._epochs: deque[tuple[int, int, int]] = deque(maxlen=_MAX_EPOCHS)
        self._max_seq = random.randrange(0, 0x8000)
        self._max_ts = random.getrandbits(32)
        self._max_ms = 0
        self._rtx_seq = random.randrange(0, 0x8000)
        self._round_trip = RoundTrip()

    def __repr__(self) -> str:
        return f"Consumer({self.id!r}, {self.kind}, producer={self.producer_id!r}, subscriber={self.subscriber_id!r})"

    # -- negotiation ------------------------------------------------------------------------

    def configure(self, parameters: StreamParameters) -> None:
        """Apply what the subscriber's answer negotiated for this consumer's m-line."""
        try:
            rewriter = RtpRewriter(
                ssrc=self.ssrc, payload_type=parameters.payload_type, ids=parameters.ext_ids, mid=parameters.mid
            )
        except ValueError as exc:  # e.g. a subscriber's answer gave the MID extension an id above 14
            raise UnsupportedError(f"consumer {self.id}: {exc}") from exc
        self.parameters = parameters
        self.mid = parameters.mid
        self._rewriter = rewriter
        self._rtx_pt = parameters.rtx_payload_type
        self._update()

    @property
    def ready(self) -> bool:
        return self._rewriter is not None

    # -- state ------------------------------------------------------------------------------

    def _update(self) -> None:
        forwarding = (
            not self.closed
            and self._rewriter is not None
            and not self.paused
            and self.last_n_active
            and self.producer.forwarding
        )
        if forwarding != self.forwarding:
            self.forwarding = forwarding
            if not forwarding:
                self._started = False
            elif self._video:
                self.producer.request_keyframe()
            self.producer.refresh_active()
            self.emit("active", forwarding)

    def on_producer_state(self) -> None:
        self._update()

    def set_last_n_active(self, active: bool) -> None:
        if self.last_n_active != active:
            self.last_n_active = active
            self._update()

    def pause(self) -> None:
        if not self.paused and not self.closed:
            self.paused = True
            self._update()
            self.emit("pause")

    def resume(self) -> None:
        if self.paused and not self.closed:
            self.paused = False
            self._update()
            self.emit("resume")

    def close(self) -> None:
        """Close; emits ``producerclose`` first when the cause is the producer closing."""
        if self.closed:
            return
        self.closed = True
        self.forwarding = False
        if self in self.producer.consumers:
            self.producer.consumers.remove(self)
            self.producer.refresh_active()
        if self.producer.closed:
            self.emit("producerclose")
        self._on_close(self)
        self.emit("close")
        self.remove_all_listeners()

    # -- forwarding (hot path) ------------------------------------------------------------

    def _start_epoch(self, packet: RtpPacketView) -> None:
        now = packet.arrival_ms
        next_seq = (self._max_seq + 1) & 0xFFFF
        if self._ever_started:
            elapsed = max(1, (now - self._max_ms) * self._clock_rate // 1000)
        else:
            elapsed = 1
        self._seq_offset = (next_seq - packet.sequence_number) & 0xFFFF
        self._ts_offset = (self._max_ts + elapsed - packet.timestamp) & 0xFFFFFFFF
        self._epoch_start = next_seq
        self._epochs.append((next_seq, self._seq_offset, self._ts_offset))
        self._max_seq = (next_seq - 1) & 0xFFFF
        self._started = True
        self._ever_started = True
        if self.producer.last_sr is not None:
            self.send_sender_report()

    def forward(self, packet: RtpPacketView, abs_send_time: bytes) -> None:
        if not self._started:
            if self._video and not is_keyframe(self._codec_name, packet.payload):
                self.stats.waiting_keyframe_drops += 1
                if self.stats.waiting_keyframe_drops % 50 == 0:
                    self.producer.request_keyframe()  # throttled upstream
                return
            self._start_epoch(packet)
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        if (seq - self._epoch_start) & 0xFFFF >= 0x8000:
            return  # late packet from before this epoch
        ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        data = self._rewriter.serialize(packet, seq, ts, abs_send_time)  # type: ignore[union-attr]
        stats = self.stats
        if self._send_rtp(data):
            stats.packets_sent += 1
            stats.bytes_sent += len(data)
            stats.payload_bytes_sent += len(packet.body)
        else:
            stats.send_failures += 1
        if (seq - self._max_seq) & 0xFFFF < 0x8000:
            self._max_seq = seq
            self._max_ts = ts
            self._max_ms = packet.arrival_ms

    # -- feedback from the subscriber -------------------------------------------------------

    def handle_nack(self, lost: list[int]) -> None:
        """Retransmit from the producer's history (RTX when negotiated, else the packet again)."""
        self.stats.nacks_received += 1
        self.stats.nacked_packets += len(lost)
        history = self.producer.history
        rewriter = self._rewriter
        if history is None or rewriter is None or not self._ever_started:
            return
        now = monotonic_ms()
        for out_seq in lost:
            if (self._max_seq - out_seq) & 0xFFFF >= 0x8000:
                self.stats.retransmit_misses += 1
                continue  # never sent
            for start, seq_offset, ts_offset in reversed(self._epochs):
                if (out_seq - start) & 0xFFFF < 0x8000:
                    break
            else:
                self.stats.retransmit_misses += 1
                continue
            packet = history.get((out_seq - seq_offset) & 0xFFFF, now)
            if packet is None:
                self.stats.retransmit_misses += 1
                continue
            ts = (packet.timestamp + ts_offset) & 0xFFFFFFFF
            abs_send_time = abs_send_time_now()
            if self._rtx_pt is not None:
                data = rewriter.serialize(
                    packet,
                    self._rtx_seq,
                    ts,
                    abs_send_time,
                    ssrc=self.rtx_ssrc,
                    payload_type=self._rtx_pt,
                    prefix=_OSN.pack(out_seq),
                )
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            else:
                data = rewriter.serialize(packet, out_seq, ts, abs_send_time)
            if self._send_rtp(data):
                self.stats.retransmitted += 1

    def handle_keyframe_request(self) -> None:
        self.stats.keyframe_requests_received += 1
        if self.forwarding:
            self.producer.request_keyframe()

    def handle_report(self, block: ReportBlock) -> None:
        self.stats.fraction_lost = block.fraction_lost
        rtt = self._round_trip.measure(block)
        if rtt is not None:
            self.stats.round_trip_time_ms = rtt

    # -- RTCP -------------------------------------------------------------------------------

    def sender_report(self) -> bytes | None:
        """SR + SDES for this stream: the publisher's NTP/RTP mapping in the rewritten timestamp
        space (RTP + this epoch's timestamp offset), so receivers keep lip sync."""
        sr = self.producer.last_sr
        if sr is None or not self._ever_started or self.closed:
            return None
        rtp_ts = (sr.rtp_timestamp + self._ts_offset) & 0xFFFFFFFF
        self._round_trip.sent(sr.ntp_timestamp)
        return build_sr(
            self.ssrc, sr.ntp_timestamp, rtp_ts, self.stats.packets_sent, self.stats.payload_bytes_sent
        ) + build_sdes_cname(self.ssrc, self.cname)

    def send_sender_report(self) -> None:
        data = self.sender_report()
        if data is not None and self._send_rtcp(data):
            self.stats.sender_reports_sent += 1
