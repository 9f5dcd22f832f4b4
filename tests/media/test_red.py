"""RED (RFC 2198) payloads: parsing, building, the fast strip and the per-stream encoder.

The reference bytes below are written by hand from RFC 2198 section 3 the way libwebrtc's
AudioEncoderCopyRed (modules/audio_coding/codecs/red/audio_encoder_copy_red.cc) lays them out for
Opus: redundant blocks oldest first, each with a 4-byte header ``F=1 | PT (7) | timestamp offset
(14) | block length (10)``, then the 1-byte primary header ``F=0 | PT (7)``, then the blocks' data
in header order, the primary last. Chromium's offer has ``a=rtpmap:63 red/48000/2`` /
``a=fmtp:63 111/111`` (distance 1) with Opus on PT 111 and 20 ms packets (960 ticks at 48 kHz).
"""

from __future__ import annotations

import random
import re

import pytest

from media.red import (
    MAX_BLOCK_LENGTH,
    MAX_TIMESTAMP_OFFSET,
    RedBlock,
    RedEncoder,
    RedPayload,
    build_red,
    parse_red,
    primary_of,
)

OPUS = 111
PREVIOUS = bytes(range(50))  # the Opus packet at timestamp T - 960
CURRENT = bytes(range(100, 152))  # the Opus packet at timestamp T (52 bytes)
OLDER = bytes(range(200, 248))  # the Opus packet at T - 1920 (48 bytes)

# Distance 1: F=1, PT 111 -> 0xEF; offset 960 << 10 | length 50 = 0x0F0032; primary header 0x6F.
CHROMIUM_DISTANCE_1 = bytes([0xEF, 0x0F, 0x00, 0x32, 0x6F]) + PREVIOUS + CURRENT
# Distance 2 ("111/111/111"): the block at T - 1920 first (1920 << 10 | 48 = 0x1E0030), then T - 960.
CHROMIUM_DISTANCE_2 = bytes([0xEF, 0x1E, 0x00, 0x30, 0xEF, 0x0F, 0x00, 0x32, 0x6F]) + OLDER + PREVIOUS + CURRENT


# -- parsing -------------------------------------------------------------------------------------

def test_parse_chromium_distance_1() -> None:
    red = parse_red(CHROMIUM_DISTANCE_1)
    assert red.blocks == [RedBlock(OPUS, 960, PREVIOUS), RedBlock(OPUS, 0, CURRENT)]
    assert red.primary == RedBlock(OPUS, 0, CURRENT)
    assert red.redundant == [RedBlock(OPUS, 960, PREVIOUS)]
    assert RedPayload.parse(CHROMIUM_DISTANCE_1) == red


def test_parse_chromium_distance_2() -> None:
    red = parse_red(CHROMIUM_DISTANCE_2)
    assert red.blocks == [RedBlock(OPUS, 1920, OLDER), RedBlock(OPUS, 960, PREVIOUS), RedBlock(OPUS, 0, CURRENT)]


def test_parse_primary_only_and_empty_primary() -> None:
    assert parse_red(b"\x6f" + CURRENT).blocks == [RedBlock(OPUS, 0, CURRENT)]
    assert parse_red(b"\x6f").blocks == [RedBlock(OPUS, 0, b"")]
    # A redundant block of length 0, and one that ends exactly where the primary starts (empty).
    assert parse_red(bytes([0xEF, 0x0F, 0x00, 0x00, 0x6F])).blocks == [RedBlock(OPUS, 960, b""), RedBlock(OPUS, 0, b"")]


def test_parse_field_limits() -> None:
    # The largest offset and length the header can carry, PT 0 and 127.
    data = bytes(MAX_BLOCK_LENGTH)
    payload = build_red(127, b"p", [RedBlock(0, MAX_TIMESTAMP_OFFSET, data)])
    assert payload[:5] == bytes([0x80, 0xFF, 0xFF, 0xFF, 0x7F])
    assert parse_red(payload).blocks == [RedBlock(0, MAX_TIMESTAMP_OFFSET, data), RedBlock(127, 0, b"p")]


@pytest.mark.parametrize(("payload", "message"), [
    (b"", "RED payload is empty (no block header)"),
    (b"\xef", "RED block header 0 is truncated: 1 of 4 bytes at offset 0"),
    (b"\xef\x0f\x00", "RED block header 0 is truncated: 3 of 4 bytes at offset 0"),
    (b"\xef\x0f\x00\x32\xef\x07", "RED block header 1 is truncated: 2 of 4 bytes at offset 4"),
    (b"\xef\x0f\x00\x00", "RED payload ends after 1 redundant block header(s) without a primary header"),
    (b"\xef\x0f\x00\x00\xef\x07\x80\x00", "RED payload ends after 2 redundant block header(s) without a primary header"),
])
def test_parse_truncated_headers(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_red(payload)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        primary_of(payload)


def test_parse_block_past_the_end() -> None:
    # One redundant block of 50 bytes, 49 present.
    payload = CHROMIUM_DISTANCE_1[:5 + 49]
    with pytest.raises(ValueError, match=r"^RED block 0 \(50 bytes at offset 5\) runs past the end of the payload "
                                         r"\(54 bytes\)$"):
        parse_red(payload)
    with pytest.raises(ValueError, match=r"^RED redundant blocks \(50 bytes after the headers\) run past the end"):
        primary_of(payload)
    # The second of two blocks runs past the end (the first fits).
    payload = CHROMIUM_DISTANCE_2[:9 + 48 + 10]
    with pytest.raises(ValueError, match=r"^RED block 1 \(50 bytes at offset 57\) runs past the end"):
        parse_red(payload)
    with pytest.raises(ValueError, match=r"^RED redundant blocks \(98 bytes after the headers\) run past the end"):
        primary_of(payload)
    # Exactly up to the end: valid, with an empty primary.
    assert primary_of(CHROMIUM_DISTANCE_1[:55]) == (OPUS, b"")


def test_random_payloads() -> None:
    """Whatever the bytes, parse_red raises ValueError or round-trips, and primary_of agrees."""
    rng = random.Random(2198)
    for _ in range(5000):
        count = rng.randrange(4)
        parts = []
        for _ in range(count):  # F=1 | PT, a random offset, a length short enough to fit most of the time
            length = rng.randrange(300) if rng.random() < 0.9 else rng.randrange(1024)
            word = (0x80 | rng.randrange(128)) << 24 | rng.randrange(1 << 14) << 10 | length
            parts.append(word.to_bytes(4, "big")[:4 if rng.random() < 0.97 else rng.randrange(4)])
        parts.append(bytes([rng.randrange(256)]) if rng.random() < 0.95 else b"")
        parts.append(rng.randbytes(rng.randrange(0, 1200)))
        payload = b"".join(parts)
        try:
            red = parse_red(payload)
        except ValueError:
            with pytest.raises(ValueError, match="^RED "):
                primary_of(payload)
            continue
        assert red.serialize() == payload or any(b.timestamp_offset == 0 for b in red.redundant)
        assert primary_of(payload) == (red.primary.payload_type, red.primary.data)


# -- building and round trips --------------------------------------------------------------------

def test_build_matches_chromium() -> None:
    assert build_red(OPUS, CURRENT, [RedBlock(OPUS, 960, PREVIOUS)]) == CHROMIUM_DISTANCE_1
    assert build_red(OPUS, CURRENT, [RedBlock(OPUS, 1920, OLDER), RedBlock(OPUS, 960, PREVIOUS)]) == CHROMIUM_DISTANCE_2
    assert build_red(OPUS, CURRENT) == b"\x6f" + CURRENT


@pytest.mark.parametrize("payload", [
    CHROMIUM_DISTANCE_1, CHROMIUM_DISTANCE_2, b"\x6f", b"\x00abc",
    build_red(96, b"x" * 1300, [RedBlock(97, 1, b""), RedBlock(96, MAX_TIMESTAMP_OFFSET, b"y" * MAX_BLOCK_LENGTH)]),
])
def test_round_trip(payload: bytes) -> None:
    red = parse_red(payload)
    assert red.serialize() == payload
    assert primary_of(payload) == (red.primary.payload_type, red.primary.data)
    assert parse_red(build_red(red.primary.payload_type, red.primary.data, red.redundant)) == red


@pytest.mark.parametrize("block", [
    RedBlock(OPUS, 0, PREVIOUS),  # not older than the primary
    RedBlock(OPUS, MAX_TIMESTAMP_OFFSET + 1, PREVIOUS),  # too old for 14 bits
    RedBlock(OPUS, -960, PREVIOUS),  # newer than the primary
    RedBlock(OPUS, 960, bytes(MAX_BLOCK_LENGTH + 1)),  # too long for 10 bits
])
def test_build_leaves_out_what_does_not_fit(block: RedBlock) -> None:
    assert build_red(OPUS, CURRENT, [block]) == b"\x6f" + CURRENT
    assert build_red(OPUS, CURRENT, [block, RedBlock(OPUS, 960, PREVIOUS)]) == CHROMIUM_DISTANCE_1


def test_build_rejects_bad_payload_types() -> None:
    with pytest.raises(ValueError, match=r"^RED block payload type 128 is outside 0\.\.127$"):
        build_red(128, CURRENT)
    with pytest.raises(ValueError, match=r"^RED block payload type -1 is outside 0\.\.127$"):
        build_red(OPUS, CURRENT, [RedBlock(-1, 960, PREVIOUS)])
    with pytest.raises(ValueError, match=r"^RED payload has no blocks \(a primary block is required\)$"):
        RedPayload([]).serialize()
    with pytest.raises(ValueError, match=r"^RED primary block has timestamp offset 960, must be 0$"):
        RedPayload([RedBlock(OPUS, 960, CURRENT)]).serialize()


# -- the encoder ---------------------------------------------------------------------------------

def test_encoder_produces_chromium_bytes() -> None:
    encoder = RedEncoder(OPUS)
    assert encoder.encode(PREVIOUS, 48000) == b"\x6f" + PREVIOUS  # nothing to repeat yet
    assert encoder.encode(CURRENT, 48960) == CHROMIUM_DISTANCE_1
    encoder = RedEncoder(OPUS, distance=2)
    encoder.encode(OLDER, 48000 - 960)
    encoder.encode(PREVIOUS, 48000)
    assert encoder.encode(CURRENT, 48960) == CHROMIUM_DISTANCE_2


def test_encoder_stream_recovers_every_packet() -> None:
    """Each packet's primary is the input; losing any single packet leaves it in the next one."""
    encoder = RedEncoder(OPUS)
    packets = [(bytes([n]) * (40 + n % 7), 1000 + 960 * n) for n in range(50)]
    out = [parse_red(encoder.encode(data, ts)) for data, ts in packets]
    for n in range(1, 50):
        assert out[n].primary.data == packets[n][0]
        assert out[n].redundant == [RedBlock(OPUS, 960, packets[n - 1][0])]


def test_encoder_timestamp_wrap() -> None:
    encoder = RedEncoder(OPUS, distance=2)
    encoder.encode(OLDER, (1 << 32) - 960)
    encoder.encode(PREVIOUS, 0)
    assert encoder.encode(CURRENT, 960) == CHROMIUM_DISTANCE_2
    # Timestamps given unmasked (past 2**32) are taken modulo 2**32.
    encoder = RedEncoder(OPUS)
    encoder.encode(PREVIOUS, (1 << 32) - 480)
    assert parse_red(encoder.encode(CURRENT, (1 << 32) + 480)).redundant == [RedBlock(OPUS, 960, PREVIOUS)]


def test_encoder_gap() -> None:
    """Redundancy older than the 14-bit offset is left out; the newer one of two still fits."""
    encoder = RedEncoder(OPUS, distance=2)
    encoder.encode(OLDER, 0)
    encoder.encode(PREVIOUS, 10_000)
    # 16 383 after PREVIOUS's timestamp is the limit: OLDER (26 383 ago) is dropped, PREVIOUS kept.
    red = parse_red(encoder.encode(CURRENT, 10_000 + MAX_TIMESTAMP_OFFSET))
    assert red.redundant == [RedBlock(OPUS, MAX_TIMESTAMP_OFFSET, PREVIOUS)]
    # A gap of one tick more than the limit: no redundancy at all; the stream goes on from there.
    assert encoder.encode(PREVIOUS, 10_000 + MAX_TIMESTAMP_OFFSET + MAX_TIMESTAMP_OFFSET + 1) == b"\x6f" + PREVIOUS
    red = parse_red(encoder.encode(OLDER, 10_000 + 2 * MAX_TIMESTAMP_OFFSET + 1 + 960))
    assert red.redundant == [RedBlock(OPUS, 960, PREVIOUS)]


def test_encoder_gap_of_lost_packets() -> None:
    """Packets missing upstream (never given to the encoder): the redundancy is the last one sent,
    with its real offset, so the receiver puts it at the right time."""
    encoder = RedEncoder(OPUS)
    encoder.encode(PREVIOUS, 48000)
    red = parse_red(encoder.encode(CURRENT, 48000 + 3 * 960))
    assert red.redundant == [RedBlock(OPUS, 2880, PREVIOUS)]


def test_encoder_dtx() -> None:
    """DTX frames (<= 2 bytes) are wrapped and carry the last speech packet while it is within the
    window, but are never repeated themselves."""
    encoder = RedEncoder(OPUS)
    encoder.encode(PREVIOUS, 0)
    assert encoder.encode(b"\xf8", 960) == bytes([0xEF, 0x0F, 0x00, 0x32, 0x6F]) + PREVIOUS + b"\xf8"
    # 400 ms later (19 200 ticks): the speech packet is too old, the DTX frame is not remembered.
    assert encoder.encode(b"\xf8\xff", 960 + 19200) == b"\x6f\xf8\xff"
    assert encoder.encode(b"", 960 + 2 * 19200) == b"\x6f"
    # Speech resumes: its first packet has no redundancy, the second has the first.
    assert encoder.encode(CURRENT, 960 + 2 * 19200 + 960) == b"\x6f" + CURRENT
    red = parse_red(encoder.encode(PREVIOUS, 960 + 2 * 19200 + 1920))
    assert red.redundant == [RedBlock(OPUS, 960, CURRENT)]


def test_encoder_reorder_and_discontinuity() -> None:
    encoder = RedEncoder(OPUS, distance=2)
    encoder.encode(OLDER, 0)
    encoder.encode(PREVIOUS, 960)
    encoder.encode(CURRENT, 1920)
    # A late packet (between OLDER and PREVIOUS): only what is older than it, and not remembered.
    red = parse_red(encoder.encode(b"late", 480))
    assert red.redundant == [] and red.primary.data == b"late"  # OLDER fell out of a distance-2 history
    red = parse_red(encoder.encode(b"late", 1440))
    assert red.redundant == [RedBlock(OPUS, 480, PREVIOUS)]
    red = parse_red(encoder.encode(b"next", 2880))
    assert red.redundant == [RedBlock(OPUS, 1920, PREVIOUS), RedBlock(OPUS, 960, CURRENT)]
    # A duplicate timestamp: not remembered.
    red = parse_red(encoder.encode(b"again", 2880))
    assert red.redundant == [RedBlock(OPUS, 960, CURRENT)]
    assert parse_red(encoder.encode(b"after", 3840)).redundant == [RedBlock(OPUS, 1920, CURRENT), RedBlock(OPUS, 960, b"next")]
    # Far backwards (a new timeline without reset()): history restarts from it.
    assert encoder.encode(b"other", 2880 - 100_000) == b"\x6f" + b"other"
    red = parse_red(encoder.encode(b"other2", 2880 - 100_000 + 960))
    assert red.redundant == [RedBlock(OPUS, 960, b"other")]


def test_encoder_duplicate_is_not_remembered() -> None:
    encoder = RedEncoder(OPUS)
    encoder.encode(PREVIOUS, 0)
    encoder.encode(CURRENT, 960)
    assert encoder.encode(b"dup", 960) == b"\x6fdup"  # PREVIOUS is no longer remembered (distance 1)
    assert parse_red(encoder.encode(b"next", 1920)).redundant == [RedBlock(OPUS, 960, CURRENT)]


def test_encoder_reset_on_source_switch() -> None:
    encoder = RedEncoder(OPUS)
    encoder.encode(PREVIOUS, 0)
    encoder.reset()
    assert encoder.encode(CURRENT, 960) == b"\x6f" + CURRENT
    assert parse_red(encoder.encode(b"next", 1920)).redundant == [RedBlock(OPUS, 960, CURRENT)]


def test_encoder_size_limits() -> None:
    # A packet longer than 1023 bytes is sent but cannot be repeated.
    encoder = RedEncoder(OPUS)
    encoder.encode(PREVIOUS, 0)
    big = bytes(MAX_BLOCK_LENGTH + 1)
    assert parse_red(encoder.encode(big, 960)).redundant == [RedBlock(OPUS, 960, PREVIOUS)]
    assert parse_red(encoder.encode(CURRENT, 1920)).redundant == [RedBlock(OPUS, 1920, PREVIOUS)]
    # max_size: redundancy that would make the payload longer is left out (the newest kept first).
    encoder = RedEncoder(OPUS, distance=2, max_size=1 + 52 + 4 + 50)
    encoder.encode(OLDER, 0)
    encoder.encode(PREVIOUS, 960)
    assert encoder.encode(CURRENT, 1920) == CHROMIUM_DISTANCE_1[:5] + PREVIOUS + CURRENT
    assert len(encoder.encode(bytes(200), 2880)) == 201


def test_encoder_arguments() -> None:
    with pytest.raises(ValueError, match="^RED distance 3 is not 1 or 2$"):
        RedEncoder(OPUS, distance=3)
    with pytest.raises(ValueError, match=r"^RED block payload type 128 is outside 0\.\.127$"):
        RedEncoder(128)
    assert RedEncoder(0).encode(b"abc", 0) == b"\x00abc"



# -- real Chromium bytes ---------------------------------------------------------------------------

#: Three consecutive RED payloads sent by Chromium 156 (Opus PT 111, RED PT 63, 20 ms, Opus at
#: 6 kbit/s so they are short), with their RTP timestamps: captured by bench/audio_floor.py's
#: encoded-streams tap on the voiced source (2026-11-27).
CHROMIUM_CAPTURE = [
    (4279741899, "ef0f000d6f08bd3a71d0ead82306370f64f008bd3aa76c6eab29039b50c21eeb"),
    (4279742859, "ef0f000e6f08bd3aa76c6eab29039b50c21eeb08bd394d528df99c47e11550a0"),
    (4279743819, "ef0f000d6f08bd394d528df99c47e11550a008bcf1d72efedd111be245cb3153e4d0"),
]


def test_chromium_capture() -> None:
    """parse_red reads libwebrtc's payloads, and RedEncoder fed their primaries writes the same bytes."""
    payloads = [(ts, bytes.fromhex(text)) for ts, text in CHROMIUM_CAPTURE]
    parsed = [parse_red(payload) for _, payload in payloads]
    for previous, current in zip(parsed, parsed[1:]):
        assert current.redundant == [RedBlock(OPUS, 960, previous.primary.data)]
    encoder = RedEncoder(OPUS)
    encoder.encode(parsed[0].redundant[0].data, payloads[0][0] - 960)
    for (ts, payload), red in zip(payloads, parsed):
        assert encoder.encode(red.primary.data, ts) == payload
        assert primary_of(payload) == (OPUS, red.primary.data)
