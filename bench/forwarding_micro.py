"""Micro-benchmark of the SFU's per-packet forwarding cost: rewrite + serialize + SRTP protect
(+ optionally sendto on a loopback UDP socket), the path each subscriber's slot runs per packet.

    .venv/bin/python bench/forwarding_micro.py [--packets N] [--subscribers K] [--no-send]

One producer, K subscribers each with a slot carrying it (as the router puts a publisher on K stages
or thumbnails). Prints CPU microseconds per forwarded packet (one packet to one subscriber), for the
ingress parse (once per packet) plus the fan-out, and the per-slot path alone, measured with
process_time. bench/slot_forwarding.py adds the slots' own costs (PictureID rewrite after a switch,
a switch, a refill of every subscriber's slots).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters  # noqa: E402
from pylibsrtp import Policy, Session  # noqa: E402

from media.parameters import StreamParameters  # noqa: E402
from media.producer import Producer  # noqa: E402
from media.rewriter import ExtensionIds  # noqa: E402
from media.rtp_packet import RtpPacketView, build_rtp  # noqa: E402
from media.slot import Slot  # noqa: E402


def make_protect() -> object:
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True  # as aiortc configures it
    policy.window_size = 1024
    return Session(policy).protect


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--subscribers", type=int, default=4)
    parser.add_argument("--no-send", action="store_true", help="skip the sendto syscall")
    args = parser.parse_args()

    codec = RTCRtpCodecParameters(
        mimeType="video/VP8", clockRate=90000, payloadType=96,
        rtcpFeedback=[RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli")],
    )
    params = StreamParameters(kind="video", mid="0", codec=codec, rtx_payload_type=97,
                              ext_ids=ExtensionIds(mid=1, abs_send_time=3), nack=True, pli=True)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.setblocking(False)
    addr = sink.getsockname()
    protects = [make_protect()]

    def send(data: bytes) -> bool:
        protected = protects[0](data)
        if not args.no_send:
            try:
                out.sendto(protected, addr)
            except BlockingIOError:
                pass
        return True

    producer = Producer(producer_id="p", participant_id="a", stream_id="s", parameters=params, ssrc=1, rtx_ssrc=2,
                        rtcp_ssrc=3, send_rtcp=lambda d: True, rtx_history_ms=1500, pli_throttle_ms=500)
    slots = []
    for i in range(args.subscribers):
        slot = Slot(slot_id="stage-video", kind="video", ssrc=100 + i, rtx_ssrc=200 + i, cname="s",
                    stream_id="stage", send_rtp=send, send_rtcp=lambda d: True)
        slot.configure(StreamParameters(kind="video", mid=str(i + 3), codec=codec, rtx_payload_type=97,
                                        ext_ids=ExtensionIds(mid=1, abs_send_time=3), nack=True, pli=True))
        slot.switch_to(producer)
        slots.append(slot)
    payload = bytes([0x10, 0x00]) + os.urandom(1100)  # VP8 keyframe start, ~2.5 Mbit/s-sized packets
    warmup = 1000
    packets = [
        build_rtp(payload_type=96, sequence_number=i & 0xFFFF, timestamp=i * 3000, ssrc=1, payload=payload,
                  extensions=[(1, b"0"), (3, b"\x01\x02\x03")])
        for i in range(args.packets + warmup)
    ]
    for i, data in enumerate(packets[:warmup]):
        producer.handle_rtp(RtpPacketView.parse(data, i * 4))
    start = time.process_time()
    for i, data in enumerate(packets[warmup:]):
        producer.handle_rtp(RtpPacketView.parse(data, 4 * (warmup + i)))
    total = time.process_time() - start
    forwarded = args.packets * args.subscribers
    sent = sum(s.stats.packets_sent for s in slots)
    assert sent >= forwarded, (sent, forwarded)

    # The per-slot path alone: rewrite + serialize + protect (+ sendto), fresh SRTP session. In steady
    # state the producer's fan-out calls the slot's tap, whose ``forward`` is the slot's _send itself.
    protects[0] = make_protect()
    tap = producer.sinks[0]
    assert slots[0].forwarding and tap.forward == slots[0]._send
    views = [RtpPacketView.parse(d, 0) for d in packets[warmup:]]
    start = time.process_time()
    for view in views:
        tap.forward(view, b"\x01\x02\x03")
    per_slot = (time.process_time() - start) / len(views) * 1e6

    print(f"packets={args.packets} subscribers={args.subscribers} send={'no' if args.no_send else 'udp loopback'}")
    print(f"end to end (parse once, history, NACK tracking, fan-out): {total / forwarded * 1e6:.2f} us per forwarded packet")
    print(f"per-slot rewrite+serialize+protect{'' if args.no_send else '+sendto'}: {per_slot:.2f} us/packet")


if __name__ == "__main__":
    asyncio.run(main())
