"""Pre-encoded media for the forwarding benchmark's load generator (encoded once, then cached).

* Video: ``seconds`` of 640x360 VP8 at 15 fps and about 500 kbit/s, one keyframe at the loop start
  and none after (real libvpx output, so aiortc's decoder in the MediaRelay baseline can decode it).
* Audio: 20 ms Opus packets: a loud voiced loop ("speech") and one digital-silence packet (what
  a muted / DTX microphone sends every 400 ms).

The generator never encodes while it runs; packetization (RFC 7741 VP8 payload descriptor with a
15-bit PictureID) is done once per frame here too, so the send path is: header + payload, protect,
sendto.
"""

from __future__ import annotations

import array
import fractions
import hashlib
import json
import math
import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import av

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000
GENERATOR_VERSION = 4
#: Largest RTP payload of a video packet (aiortc uses 1300 including the descriptor).
VP8_MAX_PAYLOAD = 1200


@dataclass(frozen=True)
class MediaParams:
    width: int = 640
    height: int = 360
    fps: int = 15
    video_bitrate: int = 500_000
    seconds: float = 10.0
    audio_seconds: float = 2.0

    def key(self) -> str:
        identity = json.dumps([self.__dict__, GENERATOR_VERSION, av.__version__], sort_keys=True)
        return hashlib.sha256(identity.encode()).hexdigest()[:16]


@dataclass
class MediaLoop:
    params: MediaParams
    frames: list[bytes]  # VP8 frames (frame 0 is the only keyframe)
    speech: list[bytes]  # Opus packets, 20 ms each
    silence: bytes  # one Opus packet of digital silence

    def video_bitrate(self) -> float:
        return sum(len(f) for f in self.frames) * 8 / (len(self.frames) / self.params.fps)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cabinet-bench"


def _picture(index: int, width: int, height: int, texture: bytes) -> av.VideoFrame:
    """A scrolling noise texture with a moving bright bar: keeps the encoder at its bitrate."""
    frame = av.VideoFrame(width, height, "yuv420p")
    y_plane, u_plane, v_plane = frame.planes
    stride = y_plane.line_size
    shift = (index * 5) % width
    rows = []
    bar = (index * 8) % width
    for y in range(height):
        start = (((y // 8) * 37 + shift) % (len(texture) - width))
        row = bytearray(texture[start : start + width])
        row[bar : bar + 24] = b"\xeb" * len(row[bar : bar + 24])
        rows.append(bytes(row) + b"\x00" * (stride - width))
    y_plane.update(b"".join(rows))
    for plane, value in ((u_plane, 100 + index % 40), (v_plane, 150)):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame


def _encode_video(params: MediaParams) -> list[bytes]:
    count = round(params.seconds * params.fps)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = params.width, params.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, params.fps)
    codec.framerate = params.fps
    codec.bit_rate = params.video_bitrate
    codec.gop_size = 100000
    codec.thread_count = 1
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "auto-alt-ref": "0",
                     "kf-max-dist": "100000", "kf-min-dist": "100000", "error-resilient": "1",
                     "end-usage": "cbr", "undershoot-pct": "95", "buf-sz": "1000"}
    rng = random.Random(2009)
    texture = b"".join(bytes([rng.randrange(40, 200)]) * 4 for _ in range(params.width * 12))
    packets: list[av.Packet] = []
    for index in range(count):
        frame = _picture(index, params.width, params.height, texture)
        frame.pts = index
        frame.time_base = codec.time_base
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    frames = [bytes(p) for p in packets]
    keys = [bool(p.is_keyframe) for p in packets]
    if len(frames) != count or not keys[0] or any(keys[1:]):
        raise RuntimeError(f"VP8 encoder gave {len(frames)} frames, keyframes {keys.count(True)}")
    return frames


def _encode_opus(pcm_packets: list[bytes]) -> list[bytes]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_CLOCK
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = 32000
    codec.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    out: list[bytes] = []
    for n, pcm in enumerate(pcm_packets):
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(pcm)
        frame.sample_rate = AUDIO_CLOCK
        frame.pts = n * 960
        frame.time_base = codec.time_base
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out


def _speech_pcm(packets: int) -> list[bytes]:
    out = []
    for n in range(packets):
        samples = array.array("h")
        for i in range(960):
            t = (n * 960 + i) / AUDIO_CLOCK
            envelope = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t)
            value = sum(math.sin(2 * math.pi * 150 * k * t) / k for k in range(1, 6))
            samples.append(int(9000 * envelope * value))
        out.append(samples.tobytes())
    return out


def load(params: MediaParams | None = None) -> MediaLoop:
    params = params or MediaParams()
    path = cache_dir() / f"media-{params.key()}.bin"
    if path.exists():
        blob = path.read_bytes()
        header_len = struct.unpack_from("!I", blob)[0]
        meta = json.loads(blob[4 : 4 + header_len])
        pos = 4 + header_len
        chunks = []
        for size in meta["sizes"]:
            chunks.append(blob[pos : pos + size])
            pos += size
        nf, ns = meta["frames"], meta["speech"]
        return MediaLoop(params, chunks[:nf], chunks[nf : nf + ns], chunks[nf + ns])
    frames = _encode_video(params)
    speech = _encode_opus(_speech_pcm(round(params.audio_seconds * 50)))[: round(params.audio_seconds * 50)]
    silence = _encode_opus([bytes(1920)] * 3)[1]
    chunks = frames + speech + [silence]
    meta = json.dumps({"frames": len(frames), "speech": len(speech), "sizes": [len(c) for c in chunks]}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(struct.pack("!I", len(meta)) + meta + b"".join(chunks))
    tmp.replace(path)
    return MediaLoop(params, frames, speech, silence)


def vp8_payloads(frame: bytes, picture_id: int) -> list[bytes]:
    """RFC 7741 packetization: X=1, I=1 with a 15-bit PictureID, S=1 on the first packet."""
    count = max(1, math.ceil(len(frame) / VP8_MAX_PAYLOAD))
    size = math.ceil(len(frame) / count)
    pid = struct.pack("!H", 0x8000 | (picture_id & 0x7FFF))
    out = []
    for i in range(count):
        descriptor = bytes([0x90 if i == 0 else 0x80, 0x80]) + pid
        out.append(descriptor + frame[i * size : (i + 1) * size])
    return out


if __name__ == "__main__":
    loop = load()
    sizes = [len(f) for f in loop.frames]
    print(f"{len(loop.frames)} frames, keyframe {sizes[0]} B, mean {sum(sizes) / len(sizes):.0f} B, "
          f"{loop.video_bitrate() / 1000:.0f} kbit/s; {len(loop.speech)} speech packets "
          f"mean {sum(map(len, loop.speech)) / len(loop.speech):.0f} B; silence {len(loop.silence)} B")
