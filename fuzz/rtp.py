"""RTP target: one decrypted datagram from a publisher.

Documented refusals: ``ValueError`` from RtpPacketView.parse / extension lookup / RTX unwrap (the
transport counts the packet as malformed and drops it). Properties of an accepted packet:
  * the payload and every header extension element lie inside the packet, after the header;
  * rewriting it for a subscriber (with or without extensions, as RTX or not) gives RTP that parses
    again with the same marker, payload and padding, and the MID the subscriber negotiated;
  * an RTX rewrite unwraps back to the original sequence number and payload;
  * the forwarding path (fuzz/_media.py: learn the SSRC, producer, history, slots) never raises
    anything else, and everything it sends parses.
"""

from __future__ import annotations

from fuzz import _media, check
from media.keyframe import is_keyframe
from media.rewriter import ExtensionIds, RtpRewriter
from media.rtp_packet import RtpPacketView, is_rtcp


_REWRITERS = (
    RtpRewriter(ssrc=0xCAFE, payload_type=98, ids=_media.SUBSCRIBER_IDS, mid="v1"),
    RtpRewriter(ssrc=0xBEEF, payload_type=111, ids=ExtensionIds(), mid=None),
    RtpRewriter(ssrc=0xF00D, payload_type=100, ids=ExtensionIds(mid=14, audio_level=13), mid="x" * 16),
)
_RTX_PT = 99
_RTX_SSRC = 0xABCD


def _parse_extensions(view: RtpPacketView) -> None:
    data = view.data
    for ext_id in (*range(0, 17), 127, 255):
        try:
            value = view.extension(ext_id)
        except ValueError:
            continue
        if value is None:
            continue
        check(view.ext_end and 0 < ext_id, f"extension {ext_id} found without an extension block")
        start = data.find(value, view.ext_start)
        check(start >= view.ext_start and start + len(value) <= view.ext_end,
              f"extension {ext_id} value lies outside the extension block")


def _check_rewrite(view: RtpPacketView, rewriter: RtpRewriter) -> None:
    level = view.audio_level
    out = rewriter.serialize(view, 4321, 123456789, b"\x01\x02\x03")
    try:
        again = RtpPacketView.parse(out)
    except ValueError as exc:
        raise AssertionError(f"rewritten packet does not parse ({exc}): {out[:48].hex()}") from None
    check(not is_rtcp(out), "rewritten RTP demultiplexes as RTCP")
    check(again.payload == view.payload, "rewriting changed the payload")
    check(again.padding_size == view.padding_size, "rewriting changed the padding")
    check((again.marker, again.sequence_number, again.timestamp, again.ssrc, again.payload_type)
          == (view.marker, 4321, 123456789, rewriter.ssrc, rewriter.payload_type), "rewritten header fields differ")
    if rewriter is _REWRITERS[0]:
        check(again.extension(_media.SUBSCRIBER_IDS.mid) == b"v1", "the subscriber's MID is missing")
        if level >= 0:
            check(again.extension(_media.SUBSCRIBER_IDS.audio_level) == bytes([level]), "the audio level is lost")
    # RTX retransmission (RFC 4588), as Slot.handle_nack sends it.
    osn = view.sequence_number.to_bytes(2, "big")
    rtx = rewriter.serialize(view, 777, 123456789, b"\x01\x02\x03", ssrc=_RTX_SSRC, payload_type=_RTX_PT, prefix=osn)
    try:
        back = RtpPacketView.parse(rtx)
        back.unwrap_rtx(rewriter.payload_type, rewriter.ssrc)
    except ValueError as exc:
        raise AssertionError(f"RTX rewrite does not unwrap ({exc}): {rtx[:48].hex()}") from None
    check(back.sequence_number == view.sequence_number and back.payload == view.payload,
          "RTX unwrap does not give back the original packet")


def one_input(data: bytes) -> None:
    is_rtcp(data)
    try:
        view = RtpPacketView.parse(data, 0)
    except ValueError:
        view = None
    if view is not None:
        check(12 <= view.payload_start <= len(data) - view.padding_size, "payload lies outside the packet")
        check(view.body == data[view.payload_start:], "body is not the rest of the packet")
        _parse_extensions(view)
        try:
            value = view.extension(_media.PUBLISHER_IDS.audio_level)
        except ValueError:
            value = None
        if value:
            view.audio_level = value[0]
        for codec in ("VP8", "H264", "opus"):
            check(isinstance(is_keyframe(codec, view.payload), bool), "is_keyframe did not answer a bool")
        for rewriter in _REWRITERS:
            _check_rewrite(view, rewriter)
        try:
            view.unwrap_rtx(96, 1111)
        except ValueError:
            pass
        else:
            check(view.payload_start <= len(data) - view.padding_size, "RTX unwrap moved the payload outside")
        # The live forwarding path (a packet that does not parse stops at the same ValueError there):
        # the packet as sent, then again (a duplicate, or a retransmission after a gap).
        _media.run(lambda path: (path.on_rtp(data), path.on_rtp(data)))
