"""Per-slot RTP rewriting: the hot path of the SFU.

Everything that does not change per packet (SSRC, payload type, extension ids, the MID element)
is computed once when the slot is configured; per packet the rewriter does two integer
additions, one ``struct.pack`` and one ``bytes.join`` in front of the shared payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtp_packet import (
    BYTES,
    HEADER,
    HEADER_WITH_EXTENSION,
    ONE_BYTE_PROFILE,
    PADDING,
    RtpPacketView,
)

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"


@dataclass(frozen=True)
class ExtensionIds:
    """Header extension ids negotiated on one connection (0: not negotiated)."""

    mid: int = 0
    audio_level: int = 0
    abs_send_time: int = 0

    @classmethod
    def from_uris(cls, pairs: list[tuple[int, str]]) -> ExtensionIds:
        ids = {uri: x_id for x_id, uri in pairs}
        return cls(
            mid=ids.get(URI_MID, 0),
            audio_level=ids.get(URI_AUDIO_LEVEL, 0),
            abs_send_time=ids.get(URI_ABS_SEND_TIME, 0),
        )


class RtpRewriter:
    """Serializes a producer's packets as one slot's stream.

    Output extensions: the slot's MID (constant), the publisher's audio level (copied) and
    abs-send-time (the server's send time), each under the subscriber connection's own ids;
    anything else the publisher sent is dropped. CSRCs are dropped.
    """

    __slots__ = ("ssrc", "payload_type", "_mid_elem", "_lvl_hdr", "_abs_hdr", "_base_len", "_has_ext")

    def __init__(self, *, ssrc: int, payload_type: int, ids: ExtensionIds, mid: str | None) -> None:
        if not 0 <= payload_type <= 127:
            raise ValueError(f"payload type {payload_type} is out of range")
        self.ssrc = ssrc
        self.payload_type = payload_type
        mid_bytes = (mid or "").encode("utf8")
        if ids.mid and mid_bytes:
            if not 1 <= len(mid_bytes) <= 16 or ids.mid > 14:
                raise ValueError(f"MID {mid!r} / id {ids.mid} does not fit the one-byte form")
            self._mid_elem = BYTES[(ids.mid << 4) | (len(mid_bytes) - 1)] + mid_bytes
        else:
            self._mid_elem = b""
        if ids.audio_level > 14 or ids.abs_send_time > 14:
            raise ValueError("extension ids above 14 are not supported")
        self._lvl_hdr = BYTES[ids.audio_level << 4] if ids.audio_level else b""
        self._abs_hdr = BYTES[(ids.abs_send_time << 4) | 2] if ids.abs_send_time else b""
        self._base_len = len(self._mid_elem)
        self._has_ext = bool(self._mid_elem or self._lvl_hdr or self._abs_hdr)

    def serialize(
        self,
        packet: RtpPacketView,
        sequence_number: int,
        timestamp: int,
        abs_send_time: bytes,
        *,
        ssrc: int = 0,
        payload_type: int = -1,
        prefix: bytes = b"",
    ) -> bytes:
        """Rewritten plain RTP bytes for ``packet`` (``prefix``: RTX original sequence number)."""
        if payload_type < 0:
            payload_type = self.payload_type
        b1 = (packet.marker << 7) | payload_type
        padding = packet.padding_size
        body = packet.body
        if prefix:
            # RTX (RFC 4588): OSN + original payload, padding stripped.
            body = prefix + (body[:-padding] if padding else body)
            padding = 0
        b0 = 0x80 | (0x20 if padding else 0)
        if not self._has_ext:
            return HEADER.pack(b0, b1, sequence_number, timestamp, ssrc or self.ssrc) + body
        length = self._base_len
        lvl_hdr = lvl = b""
        level = packet.audio_level
        if level >= 0 and self._lvl_hdr:
            lvl_hdr = self._lvl_hdr
            lvl = BYTES[level]
            length += 2
        abs_hdr = self._abs_hdr
        if abs_hdr:
            length += 4
        else:
            abs_send_time = b""
        if length == 0:
            return HEADER.pack(b0, b1, sequence_number, timestamp, ssrc or self.ssrc) + body
        pad = -length & 3
        head = HEADER_WITH_EXTENSION.pack(
            b0 | 0x10,
            b1,
            sequence_number,
            timestamp,
            ssrc or self.ssrc,
            ONE_BYTE_PROFILE,
            (length + pad) >> 2,
        )
        return b"".join((head, self._mid_elem, lvl_hdr, lvl, abs_hdr, abs_send_time, PADDING[pad], body))
