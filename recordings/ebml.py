"""EBML (RFC 8794) for the Matroska/WebM subset the recorder writes: ids, variable-size integers,
element builders and a header reader.

Element ids are kept as integers *with* their length marker bits (``0x1A45DFA3``, as the Matroska
specification prints them), so :func:`encode_id` is just the big-endian bytes. Sizes are
variable-size integers ("vint"): the number of leading zero bits of the first byte gives the
length (1 to 8 bytes); a size with all value bits set means "unknown" (:data:`UNKNOWN_SIZE` is the
8-byte form the writer puts in the Segment header, patched in place when the file is finalised).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# -- element ids ------------------------------------------------------------------------------

EBML = 0x1A45DFA3
EBML_VERSION = 0x4286
EBML_READ_VERSION = 0x42F7
EBML_MAX_ID_LENGTH = 0x42F2
EBML_MAX_SIZE_LENGTH = 0x42F3
DOC_TYPE = 0x4282
DOC_TYPE_VERSION = 0x4287
DOC_TYPE_READ_VERSION = 0x4285

VOID = 0xEC
CRC32 = 0xBF

SEGMENT = 0x18538067
SEEK_HEAD = 0x114D9B74
SEEK = 0x4DBB
SEEK_ID = 0x53AB
SEEK_POSITION = 0x53AC

INFO = 0x1549A966
TIMESTAMP_SCALE = 0x2AD7B1
DURATION = 0x4489
DATE_UTC = 0x4461
TITLE = 0x7BA9
MUXING_APP = 0x4D80
WRITING_APP = 0x5741

TRACKS = 0x1654AE6B
TRACK_ENTRY = 0xAE
TRACK_NUMBER = 0xD7
TRACK_UID = 0x73C5
TRACK_TYPE = 0x83
FLAG_LACING = 0x9C
NAME = 0x536E
CODEC_ID = 0x86
CODEC_PRIVATE = 0x63A2
CODEC_DELAY = 0x56AA
SEEK_PRE_ROLL = 0x56BB
VIDEO = 0xE0
PIXEL_WIDTH = 0xB0
PIXEL_HEIGHT = 0xBA
AUDIO = 0xE1
SAMPLING_FREQUENCY = 0xB5
CHANNELS = 0x9F

CLUSTER = 0x1F43B675
TIMESTAMP = 0xE7
SIMPLE_BLOCK = 0xA3
BLOCK_GROUP = 0xA0

CUES = 0x1C53BB6B
CUE_POINT = 0xBB
CUE_TIME = 0xB3
CUE_TRACK_POSITIONS = 0xB7
CUE_TRACK = 0xF7
CUE_CLUSTER_POSITION = 0xF1

TAGS = 0x1254C367

#: TrackType values.
TRACK_TYPE_VIDEO = 1
TRACK_TYPE_AUDIO = 2

#: The 8-byte "unknown size" vint (all value bits set): a Segment still being written.
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
#: Largest size an 8-byte vint can carry (2**56 - 1 is reserved for "unknown").
MAX_SIZE = (1 << 56) - 2
#: Bytes of the longest element header: a 4-byte id and an 8-byte size.
MAX_HEADER_LENGTH = 12

_DOUBLE = struct.Struct(">d")
_FLOAT = struct.Struct(">f")


# -- variable-size integers -------------------------------------------------------------------


def encode_id(element_id: int) -> bytes:
    """The bytes of an element id (1 to 4 bytes, marker bits included in ``element_id``)."""
    if not 0x80 <= element_id <= 0x1FFFFFFE:
        raise ValueError(f"EBML id 0x{element_id:X} is out of range")
    length = (element_id.bit_length() + 7) // 8
    if element_id >> (8 * length - length) != 1:
        raise ValueError(f"EBML id 0x{element_id:X} has no valid length marker")
    return element_id.to_bytes(length, "big")


def size_length(size: int) -> int:
    """Bytes of the shortest vint for ``size`` (never the reserved all-ones value)."""
    if not 0 <= size <= MAX_SIZE:
        raise ValueError(f"EBML size {size} is out of range 0..{MAX_SIZE}")
    length = 1
    while size >= (1 << (7 * length)) - 1:
        length += 1
    return length


def encode_size(size: int, length: int = 0) -> bytes:
    """``size`` as a vint, in ``length`` bytes (1..8) or, when 0, the fewest bytes possible."""
    shortest = size_length(size)
    if length == 0:
        length = shortest
    elif not 1 <= length <= 8:
        raise ValueError(f"EBML vint length {length} is out of range 1..8")
    elif length < shortest:
        raise ValueError(f"EBML size {size} does not fit a {length}-byte vint")
    return ((1 << (7 * length)) | size).to_bytes(length, "big")


def read_vint(buf: bytes | memoryview, offset: int) -> tuple[int, int]:
    """(value without the marker, length) of the vint at ``offset``; ValueError when it is
    truncated or starts with a zero byte (longer than 8 bytes). An unknown size reads as
    ``(1 << 7 * length) - 1``: see :func:`is_unknown`."""
    if offset >= len(buf):
        raise ValueError(f"EBML vint at {offset} is truncated (no byte)")
    first = buf[offset]
    if first == 0:
        raise ValueError(f"EBML vint at {offset} is invalid (first byte 0x00)")
    length = 9 - first.bit_length()
    if offset + length > len(buf):
        raise ValueError(f"EBML vint at {offset} is truncated ({len(buf) - offset} of {length} bytes)")
    value = first & (0xFF >> length)
    for index in range(offset + 1, offset + length):
        value = (value << 8) | buf[index]
    return value, length


def is_unknown(value: int, length: int) -> bool:
    """Whether a size read by :func:`read_vint` is the reserved "unknown size"."""
    return value == (1 << (7 * length)) - 1


# -- element builders -------------------------------------------------------------------------


def element(element_id: int, payload: bytes) -> bytes:
    """A complete element: id, shortest size, payload."""
    return encode_id(element_id) + encode_size(len(payload)) + payload


def master(element_id: int, *children: bytes) -> bytes:
    """A master element of known size holding the (already encoded) ``children``."""
    return element(element_id, b"".join(children))


def uint(element_id: int, value: int, width: int = 0) -> bytes:
    """An unsigned integer element, in ``width`` bytes or (0) the fewest (at least one)."""
    if value < 0:
        raise ValueError(f"EBML uint element 0x{element_id:X}: {value} is negative")
    if width == 0:
        width = max(1, (value.bit_length() + 7) // 8)
    return element(element_id, value.to_bytes(width, "big"))


def sint(element_id: int, value: int, width: int = 0) -> bytes:
    """A signed (two's complement) integer element, in ``width`` bytes or the fewest."""
    if width == 0:
        width = max(1, (value.bit_length() + 8) // 8)
    return element(element_id, value.to_bytes(width, "big", signed=True))


def float64(element_id: int, value: float) -> bytes:
    """An 8-byte IEEE 754 float element (the width the Duration placeholder relies on)."""
    return element(element_id, _DOUBLE.pack(value))


def string(element_id: int, value: str) -> bytes:
    """A UTF-8 string element (ASCII strings are a subset)."""
    return element(element_id, value.encode("utf-8"))


def binary(element_id: int, value: bytes) -> bytes:
    return element(element_id, value)


def void(total: int) -> bytes:
    """A Void element of exactly ``total`` bytes, header included (at least 2)."""
    for length in range(1, 9):
        payload = total - 1 - length
        if 0 <= payload < (1 << (7 * length)) - 1:
            return encode_id(VOID) + encode_size(payload, length) + bytes(payload)
    raise ValueError(f"a Void element cannot be {total} bytes long")


def encode_float(value: float, width: int) -> bytes:
    """The payload of a float element of ``width`` 4 or 8 bytes."""
    if width == 8:
        return _DOUBLE.pack(value)
    if width == 4:
        return _FLOAT.pack(value)
    raise ValueError(f"EBML float width {width} is not 4 or 8")


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElementHeader:
    """An element header read at ``offset``: the payload is ``[offset + header_length,
    offset + header_length + size)``; ``size`` is None when unknown."""

    id: int
    size: int | None
    header_length: int
    offset: int

    @property
    def data_start(self) -> int:
        return self.offset + self.header_length

    @property
    def end(self) -> int:
        """Offset just past the payload; ValueError for an element of unknown size."""
        if self.size is None:
            raise ValueError(f"EBML element 0x{self.id:X} at {self.offset} has an unknown size")
        return self.data_start + self.size


def read_element_header(buf: bytes | memoryview, offset: int) -> ElementHeader:
    """The element header at ``offset`` of ``buf``; ValueError when it is truncated or invalid
    (id longer than 4 bytes, size longer than 8)."""
    if offset >= len(buf):
        raise ValueError(f"EBML element at {offset} is truncated (no id)")
    first = buf[offset]
    if first < 0x10:
        raise ValueError(f"EBML element at {offset} has an invalid id (first byte 0x{first:02X})")
    id_length = 9 - first.bit_length()
    if offset + id_length > len(buf):
        raise ValueError(f"EBML element at {offset} is truncated (id)")
    element_id = int.from_bytes(buf[offset:offset + id_length], "big")
    try:
        size, size_len = read_vint(buf, offset + id_length)
    except ValueError as exc:
        raise ValueError(f"EBML element 0x{element_id:X} at {offset}: size: {exc}") from None
    known: int | None = None if is_unknown(size, size_len) else size
    return ElementHeader(element_id, known, id_length + size_len, offset)


def read_uint(payload: bytes | memoryview) -> int:
    if len(payload) > 8:
        raise ValueError(f"EBML uint of {len(payload)} bytes (at most 8)")
    return int.from_bytes(payload, "big")


def read_sint(payload: bytes | memoryview) -> int:
    if len(payload) > 8:
        raise ValueError(f"EBML int of {len(payload)} bytes (at most 8)")
    return int.from_bytes(payload, "big", signed=True)


def read_float(payload: bytes | memoryview) -> float:
    if len(payload) == 8:
        return float(_DOUBLE.unpack(payload)[0])
    if len(payload) == 4:
        return float(_FLOAT.unpack(payload)[0])
    if len(payload) == 0:
        return 0.0
    raise ValueError(f"EBML float of {len(payload)} bytes (0, 4 or 8)")


def read_string(payload: bytes | memoryview) -> str:
    """A string or UTF-8 element; trailing NUL padding is allowed by the specification."""
    try:
        return bytes(payload).rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"EBML string is not UTF-8: {exc}") from None


def children(buf: bytes | memoryview, start: int, end: int) -> list[tuple[ElementHeader, memoryview]]:
    """The child elements of a master element whose payload is ``buf[start:end]``; ValueError
    when a child is truncated, of unknown size or runs past ``end``."""
    view = memoryview(buf)[:end]
    out: list[tuple[ElementHeader, memoryview]] = []
    offset = start
    while offset < end:
        header = read_element_header(view, offset)
        if header.size is None or header.end > end:
            raise ValueError(f"EBML element 0x{header.id:X} at {offset} runs past its parent (ends at {end})")
        out.append((header, view[header.data_start:header.end]))
        offset = header.end
    return out
