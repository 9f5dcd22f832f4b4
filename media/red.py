"""RED audio redundancy (RFC 2198) on the forwarding path: parse, build, strip, and encode.

Sites on poor links (5 % loss, 300 ms RTT) cannot wait for a retransmission of audio; with RED
each packet also carries the previous packet(s), so one lost packet is recovered from the next.
The SFU never decodes Opus: it works on the RED payload's block headers only.

Wire format (RFC 2198 section 3), redundant blocks first (oldest first, as libwebrtc writes them),
the primary (newest) block last::

    redundant block header (4 bytes)             primary block header (1 byte)
     0                   1                   2                   3   0 1 2 3 4 5 6 7
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ +-+-+-+-+-+-+-+-+
    |1|  block PT   |  timestamp offset (14)    | block length (10) | |0|  block PT   |
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ +-+-+-+-+-+-+-+-+

then the blocks' data in the same order; the primary block runs to the end of the payload. A
block's RTP timestamp is the packet's timestamp minus its offset; the primary's offset is 0.

Payload types are per connection: the block PTs are the Opus PT *of the connection the payload
travels on*, the RTP header's PT is that connection's RED PT. Nothing here assumes 111 / 63.

Parsers raise plain ValueError (the aiortc packet-class convention this codebase follows; see
media/rtp_packet.py), never a MediaError: a malformed packet from the network is data, not a bug.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from .rtp_packet import BYTES

#: The largest timestamp offset a redundant block header can carry (14 bits: 341 ms at 48 kHz).
MAX_TIMESTAMP_OFFSET = (1 << 14) - 1
#: The largest redundant block (10-bit length); the primary block has no length field.
MAX_BLOCK_LENGTH = (1 << 10) - 1
#: Redundant header length, primary header length (bytes).
REDUNDANT_HEADER_LENGTH = 4
PRIMARY_HEADER_LENGTH = 1
#: An Opus packet of this many bytes or fewer is a DTX frame (TOC byte only, or TOC + 1: libopus
#: emits them during silence, ~every 400 ms in libwebrtc). It is sent, but never kept as
#: redundancy: a lost DTX frame costs nothing audible (the decoder conceals silence with silence)
#: and a copy would cost 4-6 bytes in the next packet. Chromium 156 does the same (seen by
#: bench/audio_floor.py: its 1-byte DTX frame carries the last speech packet as redundancy, and
#: the packet after the pause repeats that speech packet again, 320 ms back, not the DTX frame).
DTX_MAX_BYTES = 2
#: Default cap on an encoded RED payload: redundancy that would push the payload past it is left
#: out (libwebrtc does the same against its max packet length), so RED never fragments a packet.
MAX_RED_PAYLOAD = 1200
#: The subscriber loss ratio from which the forwarding path should wrap Opus in RED (the product
#: decision this module was written for; the module itself does not use it).
RED_LOSS_THRESHOLD = 0.03

#: First byte (F bit + PT) and the 24-bit (offset << 10 | length) of a redundant header.
_REDUNDANT = struct.Struct("!I")
#: One redundant header followed by the primary header (distance 1, the common case).
_REDUNDANT_AND_PRIMARY = struct.Struct("!IB")
_U32 = 0xFFFFFFFF
_HALF = 1 << 31


@dataclass(slots=True)
class RedBlock:
    """One block of a RED payload: its payload type, its timestamp offset (0 for the primary) and
    its data (an Opus packet)."""

    payload_type: int
    timestamp_offset: int
    data: bytes


@dataclass(slots=True)
class RedPayload:
    """A parsed RED payload: ``blocks`` in wire order, redundant ones (oldest first) then the
    primary, which is always last and has timestamp offset 0."""

    blocks: list[RedBlock] = field(default_factory=list)

    @property
    def primary(self) -> RedBlock:
        """The primary (newest) block."""
        return self.blocks[-1]

    @property
    def redundant(self) -> list[RedBlock]:
        """The redundant blocks, oldest first."""
        return self.blocks[:-1]

    @classmethod
    def parse(cls, payload: bytes) -> RedPayload:
        """Same as :func:`parse_red`."""
        return parse_red(payload)

    def serialize(self) -> bytes:
        """The payload's bytes; redundant blocks that a RED header cannot carry are left out
        (see :func:`build_red`)."""
        if not self.blocks:
            raise ValueError("RED payload has no blocks (a primary block is required)")
        primary = self.blocks[-1]
        if primary.timestamp_offset != 0:
            raise ValueError(f"RED primary block has timestamp offset {primary.timestamp_offset}, must be 0")
        return build_red(primary.payload_type, primary.data, self.blocks[:-1])


def parse_red(payload: bytes) -> RedPayload:
    """Parse a RED payload (RTP payload without padding) into its blocks.

    Raises ValueError when the payload is empty, a block header is truncated, the headers end
    without a primary header, or the redundant blocks' lengths run past the end of the payload.
    An empty primary block is accepted (RFC 2198 does not forbid it), and so is a redundant block
    with timestamp offset 0 (libwebrtc never writes one; a receiver drops it as a duplicate). The
    header fields' widths (7-bit PT, 14-bit offset, 10-bit length) are their only other limits.
    """
    length = len(payload)
    if length == 0:
        raise ValueError("RED payload is empty (no block header)")
    headers: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        if pos >= length:
            raise ValueError(f"RED payload ends after {len(headers)} redundant block header(s) without a primary header")
        first = payload[pos]
        if not first & 0x80:
            break
        if pos + REDUNDANT_HEADER_LENGTH > length:
            raise ValueError(f"RED block header {len(headers)} is truncated: {length - pos} of 4 bytes at offset {pos}")
        word = _REDUNDANT.unpack_from(payload, pos)[0]
        headers.append((first & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
        pos += REDUNDANT_HEADER_LENGTH
    pos += PRIMARY_HEADER_LENGTH
    blocks: list[RedBlock] = []
    for index, (payload_type, offset, block_length) in enumerate(headers):
        end = pos + block_length
        if end > length:
            raise ValueError(f"RED block {index} ({block_length} bytes at offset {pos}) runs past the end of "
                             f"the payload ({length} bytes)")
        blocks.append(RedBlock(payload_type, offset, payload[pos:end]))
        pos = end
    blocks.append(RedBlock(first, 0, payload[pos:]))
    return RedPayload(blocks)


def primary_of(payload: bytes) -> tuple[int, bytes]:
    """The primary block's payload type and data: the fast strip for a peer without RED.

    Walks the headers only (no block objects); raises ValueError as :func:`parse_red` does.
    """
    length = len(payload)
    pos = 0
    skip = 0
    count = 0
    while True:
        if pos >= length:
            if not length:
                raise ValueError("RED payload is empty (no block header)")
            raise ValueError(f"RED payload ends after {count} redundant block header(s) without a primary header")
        first = payload[pos]
        if not first & 0x80:
            start = pos + PRIMARY_HEADER_LENGTH + skip
            if start > length:
                raise ValueError(f"RED redundant blocks ({skip} bytes after the headers) run past the end of the "
                                 f"payload ({length} bytes)")
            return first, payload[start:]
        if pos + REDUNDANT_HEADER_LENGTH > length:
            raise ValueError(f"RED block header {count} is truncated: {length - pos} of 4 bytes at offset {pos}")
        skip += ((payload[pos + 2] & 0x03) << 8) | payload[pos + 3]
        pos += REDUNDANT_HEADER_LENGTH
        count += 1


def build_red(primary_type: int, primary: bytes, redundant: Iterable[RedBlock] = ()) -> bytes:
    """A RED payload of ``primary`` (PT ``primary_type``) with ``redundant`` blocks before it.

    ``redundant`` is in wire order (oldest first). A redundant block whose timestamp offset is not
    in 1..16383 (too old for 14 bits, or not older than the primary) or whose data is longer than
    1023 bytes cannot be described by a RED header: it is left out, which is not an error (the
    packet is still a valid RED packet, it only recovers less). Raises ValueError for a payload
    type outside 0..127, which is a caller's bug.
    """
    _check_payload_type(primary_type)
    headers: list[bytes] = []
    datas: list[bytes] = []
    for block in redundant:
        _check_payload_type(block.payload_type)
        offset = block.timestamp_offset
        block_length = len(block.data)
        if not 0 < offset <= MAX_TIMESTAMP_OFFSET or block_length > MAX_BLOCK_LENGTH:
            continue
        headers.append(_REDUNDANT.pack((0x80 | block.payload_type) << 24 | offset << 10 | block_length))
        datas.append(block.data)
    headers.append(BYTES[primary_type])
    headers.extend(datas)
    headers.append(primary)
    return b"".join(headers)


def _check_payload_type(payload_type: int) -> None:
    if not 0 <= payload_type <= 127:
        raise ValueError(f"RED block payload type {payload_type} is outside 0..127")


class RedEncoder:
    """Wraps one outgoing Opus stream in RED: each packet carries the previous ``distance`` (1 or 2)
    packets as redundancy.

    One encoder per outgoing stream (per subscriber connection and m-line), fed the packets in
    the order they are sent, with the *outgoing* RTP timestamps (after any rewriting) and the
    connection's Opus PT; the caller puts the connection's RED PT in the RTP header.

    - Redundancy older than 16383 ticks (341 ms at 48 kHz: a gap, DTX silence) is left out, as is
      a block longer than 1023 bytes or one that would push the payload past ``max_size``.
    - Timestamps are compared modulo 2**32, so the stream may wrap.
    - DTX frames (<= :data:`DTX_MAX_BYTES`, and empty payloads) are wrapped and sent (the stream
      keeps one PT, as libwebrtc does) but not remembered as redundancy; the last speech packets
      stay remembered and age out by their offset.
    - A packet older than the newest remembered one (reordered, by less than the 14-bit window)
      gets only the redundancy older than itself and is not remembered; a jump of more than the
      window backwards is a discontinuity and resets the history.
    - :meth:`reset` on a source switch (a slot changing publisher, a new SSRC): the previous
      source's packets must not be sent as this one's.
    """

    __slots__ = ("payload_type", "distance", "max_size", "_ts1", "_data1", "_ts2", "_data2")

    def __init__(self, payload_type: int, distance: int = 1, max_size: int = MAX_RED_PAYLOAD) -> None:
        _check_payload_type(payload_type)
        if distance not in (1, 2):
            raise ValueError(f"RED distance {distance} is not 1 or 2")
        self.payload_type = payload_type
        self.distance = distance
        self.max_size = max_size
        # The newest (1) and the one before (2) remembered packets; data None = nothing remembered.
        self._ts1 = 0
        self._data1: bytes | None = None
        self._ts2 = 0
        self._data2: bytes | None = None

    def reset(self) -> None:
        """Forget the remembered packets (source switch): the next packet has no redundancy."""
        self._data1 = None
        self._data2 = None

    def encode(self, payload: bytes, timestamp: int) -> bytes:
        """The RED payload of one Opus packet (``payload``, RTP timestamp ``timestamp``)."""
        timestamp &= _U32
        pt = self.payload_type
        size = len(payload)
        budget = self.max_size - size - PRIMARY_HEADER_LENGTH
        data1 = self._data1
        data2 = self._data2
        # The headers' (offset << 10 | length) words of the blocks used, -1 = left out.
        word1 = word2 = -1
        if data1 is not None:
            offset = (timestamp - self._ts1) & _U32
            if 0 < offset <= MAX_TIMESTAMP_OFFSET and len(data1) + REDUNDANT_HEADER_LENGTH <= budget:
                word1 = offset << 10 | len(data1)
                budget -= len(data1) + REDUNDANT_HEADER_LENGTH
        if data2 is not None:
            offset = (timestamp - self._ts2) & _U32
            if 0 < offset <= MAX_TIMESTAMP_OFFSET and len(data2) + REDUNDANT_HEADER_LENGTH <= budget:
                word2 = offset << 10 | len(data2)
        marked = (0x80 | pt) << 24
        if word2 >= 0 and word1 >= 0:
            out = b"".join((_REDUNDANT.pack(marked | word2), _REDUNDANT_AND_PRIMARY.pack(marked | word1, pt),
                            data2, data1, payload))  # type: ignore[arg-type]  # (word >= 0: data is set)
        elif word1 >= 0:
            out = b"".join((_REDUNDANT_AND_PRIMARY.pack(marked | word1, pt), data1, payload))  # type: ignore[arg-type]
        elif word2 >= 0:
            out = b"".join((_REDUNDANT_AND_PRIMARY.pack(marked | word2, pt), data2, payload))  # type: ignore[arg-type]
        else:
            out = BYTES[pt] + payload
        # Remember this packet if it is newer than the newest remembered one; a packet older by
        # less than the window (reordered) or a duplicate is not remembered; older by more is a
        # discontinuity (history reset).
        if data1 is not None:
            delta = (timestamp - self._ts1) & _U32
            if delta == 0:
                return out
            if delta >= _HALF:
                if (1 << 32) - delta <= MAX_TIMESTAMP_OFFSET:
                    return out
                data1 = self._data1 = self._data2 = None
        if DTX_MAX_BYTES < size <= MAX_BLOCK_LENGTH:
            if self.distance == 2:
                self._ts2 = self._ts1
                self._data2 = data1
            self._ts1 = timestamp
            self._data1 = payload
        return out
