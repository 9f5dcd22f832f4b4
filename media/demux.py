"""Demultiplexing on a transport: unsignalled SSRCs, and RTCP feedback to producers and slots."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from .rtcp import Bye, Fir, Nack, Pli, ReceiverReport, Remb, ReportBlock, RtcpPacket, SenderReport
from .rtp_packet import RtpPacketView

if TYPE_CHECKING:
    from .producer import Producer


class _RembStats(Protocol):
    remb_bitrate: int | None


class FeedbackTarget(Protocol):
    """What the subscriber's RTCP reaches, by SSRC: a :class:`media.slot.Slot`."""

    @property
    def stats(self) -> _RembStats: ...

    def handle_report(self, block: ReportBlock) -> None: ...

    def handle_nack(self, lost: list[int]) -> None: ...

    def handle_keyframe_request(self) -> None: ...

class SiteFeedback(Protocol):
    """What the site's link estimate needs of its RTCP: a :class:`media.site_budget.SiteBudget`."""

    def on_remb(self, bitrate: int, source: int) -> None: ...

    def on_report(self, ssrc: int, fraction_lost: int, highest_sequence: int) -> None: ...


logger = logging.getLogger(__name__)


def learn_ssrc(producers: Sequence[Producer], packet: RtpPacketView) -> Producer | None:
    """The producer an unsignalled SSRC belongs to: by MID header extension, else by a unique
    payload type. Only SSRCs the SDP did not announce are filled in: a stray packet never
    hijacks a stream."""
    candidates = [p for p in producers if not p.closed]
    producer = None
    for p in candidates:
        mid_id = p.parameters.ext_ids.mid
        if mid_id:
            try:
                value = packet.extension(mid_id)
            except ValueError:
                return None
            if value is not None:
                mid = value.decode("utf8", "replace")
                producer = next((c for c in candidates if c.mid == mid), None)
                break
    if producer is None:
        by_pt = [p for p in candidates if packet.payload_type in (p.payload_type, p.rtx_payload_type)]
        if len(by_pt) != 1:
            return None
        producer = by_pt[0]
    if packet.payload_type == producer.payload_type and producer.ssrc is None:
        producer.ssrc = packet.ssrc
    elif packet.payload_type == producer.rtx_payload_type and producer.rtx_ssrc is None:
        producer.rtx_ssrc = packet.ssrc
    else:
        return None
    return producer


def dispatch_rtcp(
    packets: list[RtcpPacket], producers: Mapping[int, Producer], slots: Mapping[int, FeedbackTarget],
    site: SiteFeedback | None = None,
) -> None:
    """Route parsed RTCP: SRs to producers, reports/NACK/PLI/FIR/REMB to slots, by SSRC; report
    blocks and REMB also to the site's budget."""
    for packet in packets:
        if isinstance(packet, SenderReport):
            producer = producers.get(packet.ssrc)
            if producer is not None and packet.ssrc == producer.ssrc:
                producer.handle_sender_report(packet)
            for block in packet.reports:
                if (slot := slots.get(block.ssrc)) is not None:
                    slot.handle_report(block)
                    if site is not None:
                        site.on_report(block.ssrc, block.fraction_lost, block.highest_sequence)
        elif isinstance(packet, ReceiverReport):
            for block in packet.reports:
                if (slot := slots.get(block.ssrc)) is not None:
                    slot.handle_report(block)
                    if site is not None:
                        site.on_report(block.ssrc, block.fraction_lost, block.highest_sequence)
        elif isinstance(packet, Nack):
            if (slot := slots.get(packet.media_ssrc)) is not None:
                slot.handle_nack(packet.lost)
        elif isinstance(packet, Pli):
            if (slot := slots.get(packet.media_ssrc)) is not None:
                slot.handle_keyframe_request()
        elif isinstance(packet, Fir):
            for ssrc, _ in packet.entries:
                if (slot := slots.get(ssrc)) is not None:
                    slot.handle_keyframe_request()
        elif isinstance(packet, Remb):
            mine = False
            for ssrc in packet.ssrcs:
                if (slot := slots.get(ssrc)) is not None:
                    slot.stats.remb_bitrate = packet.bitrate
                    mine = True
            if mine and site is not None:
                site.on_remb(packet.bitrate, packet.ssrc)
        elif isinstance(packet, Bye):
            logger.debug("BYE for %s", packet.sources)
