"""Micro-benchmark: CPU per forwarded packet through a slot vs. through a per-consumer stream.

    .venv/bin/python bench/slot_forwarding.py [--packets N] [--subscribers K] [--no-send] [--no-switch] [--repeat R]

The same VP8 packets (1100-byte payloads with an RFC 7741 descriptor, 15-bit PictureID and
TL0PICIDX) go from one producer to K subscribers, once through Consumers (the existing path) and
once through Slots (one slot per subscriber, after one switch, so the PictureID/TL0PICIDX rewrite
is active as in a running session). Each forwarded packet is rewritten, serialized, SRTP-protected
and (unless --no-send) sent on a loopback UDP socket. Prints microseconds of process CPU per
forwarded packet (one packet to one subscriber), best of --repeat runs, and the ratio; the issue's
target is 15 us per forwarded packet end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters  # noqa: E402
from pylibsrtp import Policy, Session  # noqa: E402

from media.consumer import Consumer  # noqa: E402
from media.parameters import StreamParameters  # noqa: E402
from media.producer import Producer  # noqa: E402
from media.rewriter import ExtensionIds  # noqa: E402
from media.rtp_packet import RtpPacketView, build_rtp  # noqa: E402
from media.slot import Slot  # noqa: E402

FEEDBACK = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")]


def params(mid: str) -> StreamParameters:
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96, rtcpFeedback=FEEDBACK)
    return StreamParameters(kind="video", mid=mid, codec=codec, rtx_payload_type=97,
                            ext_ids=ExtensionIds(mid=1, abs_send_time=3), nack=True, pli=True)


def make_send(no_send: bool) -> Callable[[bytes], bool]:
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as aiortc configures it
    policy.window_size = 1024
    protect = Session(policy).protect
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    addr = sink.getsockname()
    make_send.keep = (sink, out)  # type: ignore[attr-defined]

    def send(data: bytes) -> bool:
        protected = protect(data)
        if not no_send:
            try:
                out.sendto(protected, addr)
            except BlockingIOError:
                pass
        return True

    return send


def packets(count: int, ssrc: int, seq0: int, pid0: int) -> list[bytes]:
    """``count`` packets, 4 per picture; the first picture is a keyframe."""
    out = []
    for i in range(count):
        picture = i // 4
        start = i % 4 == 0
        desc = bytes([0x80 | (0x10 if start else 0), 0xE0]) + struct.pack("!H", 0x8000 | ((pid0 + picture) & 0x7FFF))
        desc += bytes([picture & 0xFF, 0x00])
        vp8 = bytes([0x00 if picture == 0 else 0x01]) + os.urandom(1100)
        out.append(build_rtp(payload_type=96, sequence_number=(seq0 + i) & 0xFFFF, timestamp=picture * 3000,
                             ssrc=ssrc, payload=desc + vp8, marker=int(i % 4 == 3),
                             extensions=[(1, b"0"), (3, b"\x01\x02\x03")]))
    return out


def producer(name: str, ssrc: int) -> Producer:
    return Producer(producer_id=name, participant_id=name, stream_id=name, parameters=params("0"), ssrc=ssrc,
                    rtx_ssrc=ssrc + 1, rtcp_ssrc=3, send_rtcp=lambda d: True, rtx_history_ms=1500,
                    pli_throttle_ms=500)


def run(data: list[bytes], prod: Producer) -> float:
    start = time.process_time()
    for i, raw in enumerate(data):
        prod.handle_rtp(RtpPacketView.parse(raw, 4 * i))
    return time.process_time() - start


def bench_consumers(args: argparse.Namespace, data: list[bytes]) -> tuple[float, int]:
    send = make_send(args.no_send)
    prod = producer("p", 1000)
    for i in range(args.subscribers):
        c = Consumer(consumer_id=f"c{i}", subscriber_id=f"s{i}", producer=prod, ssrc=100 + i, rtx_ssrc=200 + i,
                     cname="s", send_rtp=send, send_rtcp=lambda d: True, on_close=lambda c: None)
        prod.consumers.append(c)
        c.configure(params(str(i + 3)))
    prod.refresh_active()
    seconds = run(data, prod)
    return seconds, sum(c.stats.packets_sent for c in prod.consumers)  # type: ignore[union-attr]


def bench_slots(args: argparse.Namespace, data: list[bytes]) -> tuple[float, int]:
    send = make_send(args.no_send)
    first = producer("first", 2000)
    prod = producer("p", 1000)
    slots = []
    for i in range(args.subscribers):
        slot = Slot(slot_id=f"video-{i}", kind="video", ssrc=100 + i, rtx_ssrc=200 + i, cname="s",
                    stream_id=f"video-{i}", send_rtp=send, send_rtcp=lambda d: True)
        slot.configure(params(str(i + 3)))
        slots.append(slot)
        slot.switch_to(first)
    # One picture from a first source, then switch: the measured source runs with PictureID offsets.
    if not args.no_switch:
        for i, raw in enumerate(packets(4, 2000, 100, 7000)):
            first.handle_rtp(RtpPacketView.parse(raw, i))
    for slot in slots:
        slot.switch_to(prod)
    seconds = run(data, prod)
    assert all(s.source is prod for s in slots)
    return seconds, sum(s.stats.packets_sent for s in slots) - (0 if args.no_switch else 4 * len(slots))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-send", action="store_true", help="skip the sendto syscall")
    parser.add_argument("--no-switch", action="store_true",
                        help="slots start on the measured source (PictureID/TL0PICIDX offsets 0: no payload rewrite)")
    args = parser.parse_args()
    data = packets(args.packets, 1000, 60000, 30000)
    results: dict[str, float] = {}
    for name, fn in (("consumer", bench_consumers), ("slot", bench_slots)):
        best = float("inf")
        for _ in range(args.repeat):
            seconds, forwarded = fn(args, data)
            assert forwarded == args.packets * args.subscribers, (name, forwarded)
            best = min(best, seconds / forwarded * 1e6)
        results[name] = best
    print(f"packets={args.packets} subscribers={args.subscribers} send={'no' if args.no_send else 'udp loopback'} "
          f"(parse once + history + NACK tracking + fan-out; per subscriber rewrite+serialize+protect"
          f"{'' if args.no_send else '+sendto'}), best of {args.repeat}"
          f"{'; slots never switched (no PictureID rewrite)' if args.no_switch else '; slots after a switch'}")
    print(f"per-consumer path: {results['consumer']:.2f} us per forwarded packet")
    print(f"slot path:         {results['slot']:.2f} us per forwarded packet")
    print(f"ratio slot/consumer: {results['slot'] / results['consumer']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
