"""A receiving transport's slots (issue 11): one sendonly m-line per slot, negotiated once.

:meth:`media.transport.WebRtcTransport.create_slots` builds the :class:`media.slot_set.SlotSet`
through :func:`new_slot_set`: one transceiver per slot, in :meth:`SlotSet.slot_ids` order, whose
aiortc sender supplies the slot's SSRC and RTX SSRC. The codecs are fixed without a producer
(:data:`SLOT_CODECS`: VP8 + RTX for video, Opus for audio); a producer that sends another codec
cannot be put in a slot (:meth:`media.slot.Slot.switch_to` refuses it). msid: the stage's audio
and video share the stream ``stage`` (the browser lip-syncs them), every other slot has its own.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from . import aiortc_seams as seams
from .slot import DEFAULT_KEYFRAME_RETRY_MS, SlotKind
from .slot_set import DEFAULT_AUDIO_SLOTS, DEFAULT_VIDEO_SLOTS, SlotSet

#: The codecs a slot's m-line offers (mime types, lower case), by kind.
SLOT_CODECS: dict[str, tuple[str, ...]] = {"video": ("video/vp8", "video/rtx"), "audio": ("audio/opus", "audio/red")}


def slot_codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """aiortc's own capabilities of ``kind`` reduced to :data:`SLOT_CODECS`."""
    wanted = SLOT_CODECS[kind]
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType.lower() in wanted]


def new_slot_set(
    *,
    add_transceiver: Callable[[str], RTCRtpTransceiver],
    subscriber_id: str,
    cname: str,
    send_rtp: Callable[[bytes], bool],
    send_rtcp: Callable[[bytes], bool],
    videos: int = DEFAULT_VIDEO_SLOTS,
    audios: int = DEFAULT_AUDIO_SLOTS,
    keyframe_retry_ms: int = DEFAULT_KEYFRAME_RETRY_MS,
) -> tuple[SlotSet, dict[str, RTCRtpTransceiver]]:
    """The slot set and its transceivers by slot id. ``add_transceiver(kind)`` adds a sendonly,
    neutralized transceiver to the peer connection (the transport's)."""
    transceivers: dict[str, RTCRtpTransceiver] = {}

    def ssrcs(slot_id: str, kind: SlotKind) -> tuple[int, int]:
        transceiver = add_transceiver(kind)
        transceiver.setCodecPreferences(slot_codec_preferences(kind))
        transceivers[slot_id] = transceiver
        return seams.sender_ssrcs(transceiver.sender)

    slot_set = SlotSet(
        subscriber_id=subscriber_id,
        cname=cname,
        send_rtp=send_rtp,
        send_rtcp=send_rtcp,
        videos=videos,
        audios=audios,
        ssrcs=ssrcs,
        keyframe_retry_ms=keyframe_retry_ms,
    )
    for slot_id, slot in slot_set.slots.items():
        seams.set_sender_msid(transceivers[slot_id].sender, slot.stream_id, slot_id)
    return slot_set, transceivers
