"""What a slot reports: its switches (the ``switch`` event) and its counters."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlotSwitch:
    """A switch took effect. Video: the first packet (keyframe) of ``producer_id`` went out on
    ``slot_id``, and ``rtp_timestamp`` is the slot's timestamp of it, so a page can change a tile's
    name at exactly that frame (``requestVideoFrameCallback`` metadata.rtpTimestamp). Audio: the
    slot carries ``producer_id`` from its next packet (rtp fields -1). ``producer_id`` None: the
    slot went empty. ``sequence`` orders the switches of one slot set."""

    slot_id: str
    producer_id: str | None
    participant_id: str | None
    sequence: int
    rtp_sequence_number: int = -1
    rtp_timestamp: int = -1


@dataclass
class SlotStats:
    packets_sent: int = 0
    bytes_sent: int = 0
    payload_bytes_sent: int = 0
    send_failures: int = 0
    switches: int = 0
    waiting_keyframe_drops: int = 0
    #: Packets of a source not yet started, dropped while the subscriber's connection was not up.
    waiting_link_drops: int = 0
    #: Packets of the old source dropped after its last complete frame, while the switch waited for
    #: the new source's keyframe.
    held_drops: int = 0
    source_keyframe_requests: int = 0
    late_drops: int = 0
    #: Packets of temporal layers above the one forwarded, dropped (their numbers closed up).
    layer_drops: int = 0
    #: Video packets not sent while the slot was paused (budget or request).
    paused_drops: int = 0
    #: Up-switches of the temporal layer (at layer-sync frames or keyframes).
    layer_switches: int = 0
    #: Bytes of padding-only RTX packets sent to probe the subscriber's link.
    padding_bytes_sent: int = 0
    malformed_drops: int = 0
    nacks_received: int = 0
    nacked_packets: int = 0
    retransmitted: int = 0
    retransmitted_bytes: int = 0
    #: NACKed packets not resent because they were resent less than a round trip ago.
    retransmits_spaced: int = 0
    #: NACKed packets not resent because the site's retransmission allowance was spent.
    retransmits_over_budget: int = 0
    retransmit_misses: int = 0
    keyframe_requests_received: int = 0
    sender_reports_sent: int = 0
    fraction_lost: int = 0
    round_trip_time_ms: float | None = None
    remb_bitrate: int | None = None
