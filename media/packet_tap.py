"""Packet taps: how a consumer outside media/ (the recorder) receives a router's packets.

media/ knows nothing of recordings; it offers two attachments, both plain callbacks:

- :class:`PacketTap` on one producer: every packet the producer forwards (in arrival order,
  RTX already unwrapped, nothing while it is paused or muted) is handed to ``on_packet``; the
  producer's state changes, sender reports and close reach ``on_state``, ``on_sender_report`` and
  ``on_close``. The packet view is the producer's own: the consumer copies what it keeps.
- :func:`create_stage_tap` : a slot set with just the stage (one audio and one video slot)
  registered with the router like a subscriber's, so it follows the stage (spotlight, own pin,
  floor holder, dominant speaker) with the slots' keyframe switching and continuous sequence
  numbers and timestamps. Its packets are handed, serialized, to ``send_rtp`` (the recorder parses
  them back): the proceedings track, recorded without transcoding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from .parameters import StreamParameters
from .rewriter import ExtensionIds
from .rtp_packet import RtpPacketView
from .slot_assignment import STAGE_AUDIO, STAGE_VIDEO
from .slot_set import SlotSet

if TYPE_CHECKING:
    from .producer import Producer
    from .router import Router

#: Payload types of the stage tap's packets (fixed: nothing is negotiated).
STAGE_TAP_VP8_PT = 96
STAGE_TAP_OPUS_PT = 111


class PacketTap:
    """A :class:`media.producer.Sink` that hands one producer's packets to a callback."""

    __slots__ = ("producer", "forwarding", "forward", "closed", "_on_state", "_on_sender_report", "_on_close")

    def __init__(
        self,
        producer: Producer,
        on_packet: Callable[[RtpPacketView], None],
        *,
        on_state: Callable[[], None] | None = None,
        on_sender_report: Callable[[int, int], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.producer = producer
        self.forwarding = True
        self.closed = False
        self._on_state = on_state
        self._on_sender_report = on_sender_report
        self._on_close = on_close

        def forward(packet: RtpPacketView, _abs_send_time: bytes) -> None:
            on_packet(packet)

        self.forward: Callable[[RtpPacketView, bytes], None] = forward
        producer.sinks.append(self)
        producer.refresh_active()

    def on_producer_state(self) -> None:
        if self._on_state is not None:
            self._on_state()

    def send_sender_report(self) -> None:
        """The producer received a sender report: hand its NTP <-> RTP mapping on."""
        sr = self.producer.last_sr
        if sr is not None and self._on_sender_report is not None:
            self._on_sender_report(sr.ntp_timestamp, sr.rtp_timestamp)

    def close(self) -> None:
        """The producer closed (or the consumer detaches): no more packets."""
        if self.closed:
            return
        self.detach()
        if self._on_close is not None:
            self._on_close()

    def detach(self) -> None:
        """Stop receiving packets, without calling ``on_close``."""
        self.closed = True
        self.forwarding = False
        sinks = self.producer.sinks
        if self in sinks:
            sinks.remove(self)
            self.producer.refresh_active()


def _stage_parameters(kind: str) -> StreamParameters:
    if kind == "video":
        codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=STAGE_TAP_VP8_PT)
    else:
        codec = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2,
                                      payloadType=STAGE_TAP_OPUS_PT)
    return StreamParameters(kind=kind, mid="", codec=codec, rtx_payload_type=None, ext_ids=ExtensionIds(),
                            nack=False, pli=False)


def create_stage_tap(router: Router, subscriber_id: str, send_rtp: Callable[[bytes], bool]) -> SlotSet:
    """A stage-only slot set fed to ``send_rtp`` (see the module docstring).

    ``subscriber_id`` must not be a participant's id. Close the returned set to detach it. The
    stage slots' SSRCs are ``slot_set.slots[STAGE_AUDIO].ssrc`` and ``[STAGE_VIDEO].ssrc``."""
    slot_set = SlotSet(subscriber_id=subscriber_id, cname=subscriber_id, send_rtp=send_rtp,
                       send_rtcp=lambda _data: True, videos=0, audios=0)
    slot_set.slots[STAGE_AUDIO].configure(_stage_parameters("audio"))
    slot_set.slots[STAGE_VIDEO].configure(_stage_parameters("video"))
    router.add_slot_set(slot_set)
    return slot_set
