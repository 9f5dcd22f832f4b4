"""A slot's feedback from its subscriber and its own RTCP: the part of :class:`media.slot.Slot` that
answers NACKs (from the source's history, through the slot's sequence map: :mod:`media.sent_map`),
relays keyframe requests, reads report blocks (loss, round-trip time) and writes sender reports.

A mixin: its state lives in the slot (initialised in ``Slot.__init__``).
"""

from __future__ import annotations

import struct

from .rtcp import ReportBlock, build_sdes_cname, build_sr
from .rtp_packet import abs_send_time_now, monotonic_ms, ntp_now
from .sent_map import find_sent
from .vp8_descriptor import set_picture_ids

_OSN = struct.Struct("!H")
#: A packet is resent at most once per round trip, and never twice within this (ms) ...
MIN_RESEND_MS = 100
#: ... or this before the round trip is measured.
DEFAULT_RESEND_MS = 300


class SlotFeedback:
    """NACK, PLI/FIR, report blocks and sender reports of a :class:`media.slot.Slot`."""


    def handle_nack(self, lost: list[int]) -> None:
        """Retransmit slot sequence numbers from the history of the producer that was the source
        at that moment (RTX when negotiated, else the packet again), rewritten as first sent.

        A packet is resent at most once per round trip (:data:`MIN_RESEND_MS` before one is
        measured): a receiver on a 300 ms link asks again before the first answer can arrive, and
        answering every ask floods the very link that lost the packet."""
        stats = self.stats
        stats.nacks_received += 1
        stats.nacked_packets += len(lost)
        rewriter = self._rewriter
        if rewriter is None or not self._ever_started:
            return
        now = monotonic_ms()
        rtt = stats.round_trip_time_ms
        spacing = max(MIN_RESEND_MS, int(rtt)) if rtt is not None else DEFAULT_RESEND_MS
        resent = self._resent
        if len(resent) > 2048:
            for seq in [s for s, at in resent.items() if now - at > 2000]:
                del resent[seq]
        for out_seq in lost:
            last = resent.get(out_seq)
            if last is not None and now - last < spacing:
                stats.retransmits_spaced += 1
                continue
            sent = find_sent(self._sent, out_seq) if (self._max_seq - out_seq) & 0xFFFF < 0x8000 else None
            epoch = sent[2] if sent is not None else None
            producer = epoch.source() if epoch is not None else None
            if sent is None or epoch is None or producer is None or producer.history is None:
                stats.retransmit_misses += 1
                continue  # never sent, or beyond the map
            packet = producer.history.get(sent[1], now)
            if packet is None:
                stats.retransmit_misses += 1
                continue
            out = packet
            if self._vp8:
                try:
                    out = set_picture_ids(packet, self._out, sent[3], epoch.tl0_offset)
                except ValueError:
                    stats.retransmit_misses += 1
                    continue
            bucket = self.rtx_bucket
            if bucket is not None and not bucket.take(len(packet.data), now):
                stats.retransmits_over_budget += 1
                continue
            ts = (packet.timestamp + epoch.ts_offset) & 0xFFFFFFFF
            if self._rtx_pt is not None:
                data = rewriter.serialize(
                    out,
                    self._rtx_seq,
                    ts,
                    abs_send_time_now(),
                    ssrc=self.rtx_ssrc,
                    payload_type=self._rtx_pt,
                    prefix=_OSN.pack(out_seq),
                )
                self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            else:
                data = rewriter.serialize(out, out_seq, ts, abs_send_time_now())
            if self._send_rtp(data):
                stats.retransmitted += 1
                stats.retransmitted_bytes += len(data)
                resent[out_seq] = now

    def handle_keyframe_request(self) -> None:
        """PLI/FIR from the subscriber: ask the source it is waiting for, else the current one
        (each producer throttles its PLIs upstream)."""
        self.stats.keyframe_requests_received += 1
        tap = self._pending or self._current
        if tap is not None and self._video:
            tap.producer.request_keyframe()

    def handle_report(self, block: ReportBlock) -> None:
        self.stats.fraction_lost = block.fraction_lost
        rtt = self._round_trip.measure(block)
        if rtt is not None:
            self.stats.round_trip_time_ms = rtt

    # -- RTCP -------------------------------------------------------------------------------

    def sender_report(self) -> bytes | None:
        """SR + SDES of the slot's SSRC. The NTP <-> RTP mapping is the current source's last SR
        moved into the slot's timestamp space by this epoch's offset (the publisher's own clock:
        the stage's audio and video, both from one publisher, stay in lip sync); before the source
        sent an SR, or between sources, it is the server's wall clock against the last timestamp
        sent plus the time since. Packet and octet counts are the slot's, over all its sources."""
        if self.closed or not self._ever_started or self._rewriter is None:
            return None
        current = self._current
        sr = current.producer.last_sr if current is not None and self._started else None
        if sr is not None:
            ntp = sr.ntp_timestamp
            rtp_ts = (sr.rtp_timestamp + self._ts_offset) & 0xFFFFFFFF
        else:
            now = monotonic_ms()
            ntp = ntp_now()
            rtp_ts = (self._max_ts + (now - self._max_ms) * self._clock_rate // 1000) & 0xFFFFFFFF
        self._round_trip.sent(ntp)
        return build_sr(
            self.ssrc, ntp, rtp_ts, self.stats.packets_sent, self.stats.payload_bytes_sent
        ) + build_sdes_cname(self.ssrc, self.cname)

    def send_sender_report(self) -> None:
        data = self.sender_report()
        if data is not None and self._send_rtcp(data):
            self.stats.sender_reports_sent += 1
