"""Benchmark of recording: its CPU per recorded packet, what it adds per forwarded packet, and the
CPU of the MP4 export per minute of session.

    .venv/bin/python bench/recording.py [--packets N] [--subscribers K] [--repeat R] [--export-seconds S]

1. One producer's VP8 packets (4 per picture, ~1100-byte payloads, a keyframe every 60 pictures)
   go to K subscribers' slots (rewritten, serialized, SRTP-protected, sent on loopback UDP, as in
   bench/slot_forwarding.py), once without and once with the session recorder's tap on the producer
   (frame assembly, the time line, WebM clusters written to a file and flushed every 250 ms of
   media). Runs alternate, --repeat times each; medians of process CPU. Printed: us per forwarded
   packet without and with recording, their ratio, and the recorder's own us per recorded packet
   (the difference per packet the producer received).
2. The export: a proceedings WebM of --export-seconds (the bots' VP8 at --export-size, 15 fps, and Opus) to
   H.264/AAC MP4 (recordings/export.py, libx264 veryfast): CPU seconds per minute of session (process
   CPU, all threads), and that against the session's own length (x real time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from slot_forwarding import make_send, params, producer  # noqa: E402

from bots.media_files import MediaParams, load_media  # noqa: E402
from media.packet_tap import PacketTap  # noqa: E402
from media.rtp_packet import RtpPacketView, build_rtp  # noqa: E402
from media.slot import Slot  # noqa: E402
from recordings.export import export_mp4  # noqa: E402
from recordings.timeline import TrackClock  # noqa: E402
from recordings.track import RecordedFile, StreamFeed  # noqa: E402
from recordings.webm import TrackSpec  # noqa: E402

KEY_HEADER = b"\x10\x02\x00\x9d\x01\x2a" + struct.pack("<HH", 640, 360)


def vp8_packets(count: int, ssrc: int, *, per_picture: int = 4, key_every: int = 60) -> list[bytes]:
    """aiortc-style descriptors (X, I with a 15-bit PictureID); valid VP8 frame headers."""
    out = []
    for i in range(count):
        picture, part = divmod(i, per_picture)
        key = picture % key_every == 0
        desc = bytes([0x80 | (0x10 if part == 0 else 0), 0x80]) + struct.pack("!H", 0x8000 | (picture & 0x7FFF))
        body = (KEY_HEADER if key else b"\x11\x02\x00") if part == 0 else b""
        body += os.urandom(1100 - len(body))
        out.append(build_rtp(payload_type=96, sequence_number=i & 0xFFFF, timestamp=picture * 6000, ssrc=ssrc,
                             payload=desc + body, marker=int(part == per_picture - 1),
                             extensions=[(1, b"0"), (3, b"\x01\x02\x03")]))
    return out


def run_once(data: list[bytes], subscribers: int, record_to: Path | None) -> tuple[float, int, int]:
    """(CPU seconds, packets forwarded, frames recorded) for one pass of ``data``."""
    send = make_send(False)
    prod = producer("p", 1000)
    slots = []
    for i in range(subscribers):
        slot = Slot(slot_id=f"video-{i}", kind="video", ssrc=100 + i, rtx_ssrc=200 + i, cname="s",
                    stream_id=f"video-{i}", send_rtp=send, send_rtcp=lambda d: True)
        slot.configure(params(str(i + 3)))
        slot.switch_to(prod)
        slots.append(slot)
    feed = file = None
    if record_to is not None:
        file = RecordedFile(record_to.parent, record_to.name, title="bench", on_failure=lambda f, e: None)
        feed = StreamFeed(file=file, track=1, kind="video", clock=TrackClock(clock_rate=90000, origin_ms=0),
                          request_keyframe=lambda: None,
                          lazy_open=lambda frame: [TrackSpec(1, "video", "VP8", width=frame.width, height=frame.height)])
        PacketTap(prod, feed.on_packet)
    start = time.process_time()
    for i, raw in enumerate(data):
        prod.handle_rtp(RtpPacketView.parse(raw, 4 * i))
        if file is not None and i % 100 == 99:
            file.flush()  # the recorder's timer: every 250 ms at ~400 packets/s
    if file is not None:
        file.close()
    seconds = time.process_time() - start
    forwarded = sum(s.stats.packets_sent for s in slots)
    return seconds, forwarded, feed.stats.frames if feed is not None else 0


def bench_recording(args: argparse.Namespace) -> None:
    data = vp8_packets(args.packets, 1000)
    plain: list[float] = []
    recorded: list[float] = []
    frames = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.repeat):
            seconds, forwarded, _ = run_once(data, args.subscribers, None)
            plain.append(seconds)
            target = Path(tmp) / f"r{n}.webm"
            seconds_r, forwarded_r, frames = run_once(data, args.subscribers, target)
            recorded.append(seconds_r)
            assert forwarded == forwarded_r == args.packets * args.subscribers
    assert frames == args.packets // 4, frames
    forwarded = args.packets * args.subscribers
    base, with_rec = statistics.median(plain), statistics.median(recorded)
    print(f"forwarding, {args.subscribers} subscribers, {args.packets} packets, median of {args.repeat}:")
    print(f"  without recording     {base / forwarded * 1e6:6.2f} us per forwarded packet")
    print(f"  with recording        {with_rec / forwarded * 1e6:6.2f} us per forwarded packet "
          f"(x{with_rec / base:.3f}, +{(with_rec - base) / forwarded * 1e6:.2f} us)")
    print(f"  recorder              {(with_rec - base) / args.packets * 1e6:6.2f} us per recorded packet "
          f"({(with_rec - base) / frames * 1e6:.1f} us per recorded frame)")


def bench_export(args: argparse.Namespace) -> None:
    width, height = (int(v) for v in args.export_size.split("x"))
    media = load_media(MediaParams(width=width, height=height, video_bitrate=150_000 * width // 320,
                                   loop_seconds=2.0))
    seconds = args.export_seconds
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "proceedings.webm"
        from recordings.webm import WebmWriter

        writer = WebmWriter(source, [TrackSpec(1, "audio", "OPUS"), TrackSpec(2, "video", "VP8", width=width,
                                                                              height=height)])
        frames = [(i * 20, 1, media.speech[i % len(media.speech)].data, True) for i in range(seconds * 50)]
        frames += [(i * 1000 // 15, 2, media.video[i % len(media.video)], media.keyframes[i % len(media.video)])
                   for i in range(seconds * 15)]
        for ms, track, data, key in sorted(frames, key=lambda f: f[0]):
            writer.add_frame(track, ms, data, keyframe=key)
        writer.close()
        cpu0, wall0 = time.process_time(), time.monotonic()
        export_mp4(source, Path(tmp) / "out.mp4", duration_ms=seconds * 1000)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    print(f"export of {seconds} s ({width}x{height} 15 fps VP8 + Opus -> H.264/AAC, veryfast):")
    print(f"  {cpu / seconds * 60:6.2f} CPU seconds per minute of session; wall {wall:.1f} s "
          f"({seconds / wall:.1f}x real time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=20_000)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--export-seconds", type=int, default=60)
    parser.add_argument("--export-size", default="640x360", help="picture size of the exported session (WxH)")
    args = parser.parse_args()

    async def in_a_loop() -> None:  # producers arm timers (PLI throttle) on the running loop
        bench_recording(args)

    asyncio.run(in_a_loop())
    bench_export(args)


if __name__ == "__main__":
    main()
