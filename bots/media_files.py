"""Pre-encoded media for bots: a VP8 video loop and Opus audio loops, encoded once with PyAV.

Bots never encode while they run: :func:`load_media` returns the loops from a cache file keyed by
the parameters (and the codec library versions), generating them first when absent. Generation is
deterministic (single-threaded encoders, fixed inputs).

* Video: ``loop_seconds`` of :class:`bots.picture.PictureMaker` pictures at ``fps``, VP8 at about
  ``video_bitrate``, one keyframe at the loop start and none after it, no invisible (alt-ref)
  frames, so one packet is exactly one displayed frame.
* Temporal layers (``temporal_layers=3``, the default; browsers publish ``scalabilityMode: 'L1T3'``):
  libvpx's 3-layer, 4-frame pattern (FFmpeg ``ts-parameters`` with ``ts_layering_mode=3``), frame
  ``i`` in layer ``(0, 2, 1, 2)[i % 4]``: TL0 frames reference only TL0 (LAST), the TL1 frame
  references TL0 and refreshes the golden buffer, the first TL2 frame references TL0, the second
  the TL1 frame (golden). So TL0 alone, TL0+TL1 and all frames each decode to the same pictures
  (checked after every generation, :func:`check_layering`). Every frame's temporal id and layer
  sync flag (RFC 7741 Y bit) are kept with it. Bitrate split as libwebrtc's VP8: 40 % / 60 % /
  100 % cumulative. ``temporal_layers=1`` is the old single-layer stream.
* Audio: two 48 kHz mono Opus loops of 20 ms packets, ``speech`` (a loud speech-like voiced
  signal with syllable rhythm) and ``silence`` (digital silence), each packet with the RFC 6464
  level (-dBov, 0..127) of its PCM.

Cache file layout: ``b"CABM2\\n"``, a 4-byte big-endian length, JSON metadata (parameters, sizes,
keyframe flags, temporal ids, layer sync flags, levels), then every packet's bytes back to back.
"""

from __future__ import annotations

import array
import fractions
import hashlib
import json
import logging
import math
import os
import random
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
from av.video.frame import PictureType

from .errors import MediaFileError
from .picture import PictureMaker

logger = logging.getLogger(__name__)

#: 2: temporal layers (per-frame temporal id and layer sync in the metadata).
GENERATOR_VERSION = 2
MAGIC = b"CABM2\n"
SAMPLE_RATE = 48000
AUDIO_PACKET_SAMPLES = 960  # 20 ms
SILENCE_LEVEL = 127
#: libvpx's 3-layer pattern (FFmpeg ``ts_layering_mode=3``), one entry per frame of the 4-frame
#: period: (temporal id, highest temporal id among the frames it references).
L1T3_PATTERN: tuple[tuple[int, int], ...] = ((0, 0), (2, 0), (1, 0), (2, 1))
#: Cumulative share of the bitrate up to each layer (libwebrtc's VP8 allocation for 3 layers).
L1T3_RATE_SHARES = (0.4, 0.6, 1.0)
SUPPORTED_TEMPORAL_LAYERS = (1, 3)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cabinet-bot"


@dataclass(frozen=True)
class MediaParams:
    width: int = 640
    height: int = 360
    fps: int = 15
    video_bitrate: int = 500_000
    loop_seconds: float = 4.0
    audio_bitrate: int = 24_000  # what the server asks of publishers (media/aiortc_seams.py OPUS_FMTP)
    audio_loop_seconds: float = 2.0
    #: 3: L1T3 (libvpx's 4-frame pattern, one SSRC); 1: the single-layer stream.
    temporal_layers: int = 3

    def __post_init__(self) -> None:
        if self.temporal_layers not in SUPPORTED_TEMPORAL_LAYERS:
            raise ValueError(f"temporal_layers must be one of {SUPPORTED_TEMPORAL_LAYERS}, not {self.temporal_layers!r}")

    @property
    def video_frames(self) -> int:
        return max(1, round(self.loop_seconds * self.fps))

    @property
    def audio_packets(self) -> int:
        return max(1, round(self.audio_loop_seconds * SAMPLE_RATE / AUDIO_PACKET_SAMPLES))

    def cache_key(self) -> str:
        identity = {
            "params": asdict(self),
            "generator": GENERATOR_VERSION,
            "av": av.__version__,
            "libs": {name: str(getattr(av, "library_versions", {}).get(name)) for name in ("libavcodec",)},
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
        return f"{self.width}x{self.height}-{self.fps}fps-{digest}"


@dataclass(frozen=True)
class AudioPacket:
    data: bytes
    #: RFC 6464 level of the packet's PCM in -dBov (0 loudest, 127 silence).
    level: int


def temporal_structure(frames: int, layers: int) -> tuple[list[int], list[bool]]:
    """(temporal id, layer sync) of each frame of a loop that starts with its only keyframe.

    Layer sync (RFC 7741 Y bit): the frame references only TL0 frames, so a receiver can start
    decoding its layer there. Set on the keyframe and on upper-layer frames that reference TL0
    only; clear on the other TL0 frames (their layer never needs a sync point) and on the second
    TL2 frame of each period (it references the TL1 frame).
    """
    if layers == 1:
        return [0] * frames, [i == 0 for i in range(frames)]
    if layers != 3:
        raise ValueError(f"temporal_layers must be one of {SUPPORTED_TEMPORAL_LAYERS}, not {layers!r}")
    period = len(L1T3_PATTERN)
    tids = [L1T3_PATTERN[i % period][0] for i in range(frames)]
    sync = [i == 0 or (L1T3_PATTERN[i % period][0] > 0 and L1T3_PATTERN[i % period][1] == 0) for i in range(frames)]
    return tids, sync


@dataclass
class PreEncodedMedia:
    params: MediaParams
    video: list[bytes]
    keyframes: list[bool]
    speech: list[AudioPacket]
    silence: list[AudioPacket]
    path: Path | None = None
    #: True when this call encoded the media (False: read from the cache).
    generated: bool = False
    sha256: str = field(default="")
    #: Per video frame: its temporal id (TID) and layer sync flag (RFC 7741 Y); filled from the
    #: parameters when not given.
    temporal_ids: list[int] = field(default_factory=list)
    layer_sync: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.temporal_ids and not self.layer_sync:
            self.temporal_ids, self.layer_sync = temporal_structure(len(self.video), self.params.temporal_layers)
        if len(self.temporal_ids) != len(self.video) or len(self.layer_sync) != len(self.video):
            raise ValueError(f"{len(self.video)} video frames need as many temporal ids and layer sync flags, "
                             f"not {len(self.temporal_ids)} and {len(self.layer_sync)}")

    def layer_bitrates(self) -> list[int]:
        """Bits per second of each temporal layer alone (TID 0, 1, ...) over the loop."""
        sizes = [0] * self.params.temporal_layers
        for data, tid in zip(self.video, self.temporal_ids):
            sizes[tid] += len(data)
        return [round(size * 8 / self.params.loop_seconds) for size in sizes]


# -- encoding ---------------------------------------------------------------------------------


def ts_parameters(params: MediaParams) -> str:
    """FFmpeg libvpx ``ts-parameters`` for L1T3: cumulative layer targets in kbit/s, then the
    predefined pattern (``ts_layering_mode`` must come last: it sets the ids, decimators and the
    per-frame reference flags)."""
    if params.temporal_layers != 3:
        raise ValueError(f"ts-parameters are for 3 temporal layers, not {params.temporal_layers}")
    targets = ",".join(str(round(params.video_bitrate * share / 1000)) for share in L1T3_RATE_SHARES)
    return (f"ts_number_layers=3:ts_target_bitrate={targets}:ts_rate_decimator=4,2,1:ts_periodicity=4:"
            f"ts_layer_id=0,2,1,2:ts_layering_mode=3")


def _video_options(params: MediaParams) -> dict[str, str]:
    """libvpx options. Layered: real-time deadline with a fixed speed (a negative ``cpu-used``;
    a positive one lets libvpx pick the speed from the measured encode time, which is not
    deterministic), as libwebrtc does; the "good" deadline may insert a scene-cut keyframe in the
    middle of the pattern, which breaks the layers."""
    options = {
        "deadline": "good",
        "cpu-used": "4",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
        "threads": "1",
        "kf-max-dist": "100000",
        "kf-min-dist": "100000",
        "error-resilient": "1",
    }
    if params.temporal_layers > 1:
        options.update({"deadline": "realtime", "cpu-used": "-6", "ts-parameters": ts_parameters(params)})
    return options


def _encode_video(params: MediaParams) -> tuple[list[bytes], list[bool]]:
    frames = params.video_frames
    maker = PictureMaker(params.width, params.height, frames)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = params.width, params.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, params.fps)
    codec.framerate = params.fps
    codec.bit_rate = params.video_bitrate
    codec.gop_size = 100000
    codec.thread_count = 1
    codec.options = _video_options(params)
    packets: list[av.Packet] = []
    for index in range(frames):
        frame = av.VideoFrame(params.width, params.height, "yuv420p")
        maker.draw(index, frame)
        frame.pts = index
        frame.time_base = codec.time_base
        frame.pict_type = PictureType.I if index == 0 else PictureType.NONE
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    data = [bytes(p) for p in packets]
    keys = [bool(p.is_keyframe) for p in packets]
    if len(data) != frames or not keys[0] or any(keys[1:]):
        raise MediaFileError(f"VP8 encoder gave {len(data)} packets / keyframes {keys.count(True)} for {frames} frames")
    return data, keys


def _decoded_pictures(frames: list[bytes]) -> list[bytes]:
    """The decoded pictures (all planes' bytes) of ``frames`` with a fresh libvpx decoder."""
    decoder = av.CodecContext.create("libvpx", "r")
    pictures = []
    for data in frames:
        for frame in decoder.decode(av.Packet(data)):
            pictures.append(b"".join(bytes(plane) for plane in frame.planes))
    return pictures


def check_layering(video: list[bytes], temporal_ids: list[int]) -> None:
    """Prove the temporal layers real: for each TID ``t``, the frames with TID <= ``t`` alone
    decode, one picture each, to exactly the pictures the whole stream gives for those frames.

    Raises MediaFileError when a subset does not (an encoder that ignored the layering options).
    """
    full = _decoded_pictures(video)
    if len(full) != len(video):
        raise MediaFileError(f"the video loop decodes to {len(full)} pictures for {len(video)} frames")
    for top in range(max(temporal_ids, default=0)):
        chosen = [i for i, tid in enumerate(temporal_ids) if tid <= top]
        try:
            subset = _decoded_pictures([video[i] for i in chosen])
        except av.FFmpegError as exc:
            raise MediaFileError(f"the frames of TID <= {top} alone do not decode: {exc}") from exc
        wrong = [i for i, picture in zip(chosen, subset) if picture != full[i]]
        if len(subset) != len(chosen) or wrong:
            raise MediaFileError(f"the frames of TID <= {top} alone decode to other pictures (frames {wrong[:5]}, "
                                 f"{len(subset)} pictures for {len(chosen)} frames): the stream is not layered")


def _speech_pcm(packets: int) -> list[bytes]:
    """A voiced, speech-like signal: harmonics of a gliding ~150 Hz pitch in 4 Hz syllables."""
    rng = random.Random(6716)
    out = []
    phase = 0.0
    for n in range(packets):
        samples = array.array("h")
        for i in range(AUDIO_PACKET_SAMPLES):
            t = (n * AUDIO_PACKET_SAMPLES + i) / SAMPLE_RATE
            f0 = 150 + 25 * math.sin(2 * math.pi * 0.7 * t)
            phase += 2 * math.pi * f0 / SAMPLE_RATE
            envelope = 0.55 + 0.45 * math.sin(2 * math.pi * 4 * t) ** 2
            value = sum(math.sin(k * phase) / k for k in (1, 2, 3, 4, 5)) * 0.45
            value += (rng.random() - 0.5) * 0.04
            samples.append(int(max(-1.0, min(1.0, value * envelope)) * 20000))
        out.append(samples.tobytes())
    return out


def audio_level(pcm: bytes) -> int:
    """RFC 6464 level of s16 PCM: -dBov, clamped to 0..127 (127 also for digital silence)."""
    samples = array.array("h", pcm)
    if not samples:
        return SILENCE_LEVEL
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    if rms <= 0:
        return SILENCE_LEVEL
    return max(0, min(SILENCE_LEVEL, round(-20 * math.log10(rms / 32768))))


def _encode_audio(params: MediaParams, pcm: list[bytes]) -> list[AudioPacket]:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = SAMPLE_RATE
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = params.audio_bitrate
    codec.time_base = fractions.Fraction(1, SAMPLE_RATE)
    codec.options = {"application": "voip", "frame_duration": "20", "vbr": "on"}
    packets: list[bytes] = []
    for n, chunk in enumerate(pcm):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_PACKET_SAMPLES)
        frame.planes[0].update(chunk)
        frame.sample_rate = SAMPLE_RATE
        frame.pts = n * AUDIO_PACKET_SAMPLES
        frame.time_base = codec.time_base
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    packets = packets[: len(pcm)]
    if len(packets) < len(pcm) - 1 or any(p[0] & 0x03 for p in packets):
        raise MediaFileError("Opus encoder did not give one single-frame (code 0) packet per 20 ms")
    return [AudioPacket(data, audio_level(chunk)) for data, chunk in zip(packets, pcm)]


def generate(params: MediaParams) -> PreEncodedMedia:
    """Encode the loops (seconds of CPU; :func:`load_media` caches the result)."""
    video, keys = _encode_video(params)
    tids, sync = temporal_structure(len(video), params.temporal_layers)
    check_layering(video, tids)
    count = params.audio_packets
    speech = _encode_audio(params, _speech_pcm(count))
    silence = _encode_audio(params, [bytes(2 * AUDIO_PACKET_SAMPLES)] * count)
    media = PreEncodedMedia(params, video, keys, speech, silence, generated=True, temporal_ids=tids, layer_sync=sync)
    media.sha256 = _digest(media)
    return media


def _digest(media: PreEncodedMedia) -> str:
    h = hashlib.sha256()
    h.update(bytes(media.temporal_ids) + bytes(media.layer_sync))
    for blob in media.video + [p.data for p in media.speech] + [p.data for p in media.silence]:
        h.update(len(blob).to_bytes(4, "big"))
        h.update(blob)
    return h.hexdigest()


# -- cache ------------------------------------------------------------------------------------


def _write(media: PreEncodedMedia, path: Path) -> None:
    meta = {
        "params": asdict(media.params),
        "video": [[len(b), k, t, y] for b, k, t, y in zip(media.video, media.keyframes, media.temporal_ids, media.layer_sync)],
        "speech": [[len(p.data), p.level] for p in media.speech],
        "silence": [[len(p.data), p.level] for p in media.silence],
        "sha256": media.sha256,
    }
    header = json.dumps(meta, sort_keys=True).encode()
    blobs = media.video + [p.data for p in media.speech] + [p.data for p in media.silence]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".cabm")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + len(header).to_bytes(4, "big") + header + b"".join(blobs))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path, params: MediaParams) -> PreEncodedMedia:
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise MediaFileError(f"{path} is not a bot media file")
    size = int.from_bytes(raw[len(MAGIC) : len(MAGIC) + 4], "big")
    pos = len(MAGIC) + 4
    meta = json.loads(raw[pos : pos + size])
    pos += size
    if MediaParams(**meta["params"]) != params:
        raise MediaFileError(f"{path} holds other parameters")

    def take(n: int) -> bytes:
        nonlocal pos
        blob = raw[pos : pos + n]
        if len(blob) != n:
            raise MediaFileError(f"{path} is truncated")
        pos += n
        return blob

    video = [take(n) for n, _, _, _ in meta["video"]]
    keys = [bool(k) for _, k, _, _ in meta["video"]]
    tids = [int(t) for _, _, t, _ in meta["video"]]
    sync = [bool(y) for _, _, _, y in meta["video"]]
    speech = [AudioPacket(take(n), level) for n, level in meta["speech"]]
    silence = [AudioPacket(take(n), level) for n, level in meta["silence"]]
    media = PreEncodedMedia(params, video, keys, speech, silence, path=path, sha256=meta["sha256"],
                            temporal_ids=tids, layer_sync=sync)
    if _digest(media) != media.sha256:
        raise MediaFileError(f"{path} is corrupt")
    return media


def load_media(params: MediaParams | None = None, cache_dir: Path | str | None = None) -> PreEncodedMedia:
    """The pre-encoded loops for ``params``, from the cache or freshly generated (then cached)."""
    params = params or MediaParams()
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = directory / f"{params.cache_key()}.cabm"
    if path.exists():
        try:
            return _read(path, params)
        except (MediaFileError, ValueError, KeyError, TypeError) as exc:
            logger.warning("regenerating bot media: %s", exc)
    logger.info("encoding bot media %s (once)", path.name)
    try:
        media = generate(params)
    except (av.FFmpegError, ValueError) as exc:
        raise MediaFileError(f"cannot encode bot media: {exc}") from exc
    try:
        _write(media, path)
        media.path = path
    except OSError as exc:
        logger.warning("cannot cache bot media in %s: %s", directory, exc)
    return media
