"""Seed inputs of every target: ``python -m fuzz.seeds`` (re)writes fuzz/corpus/<target>/seed-*.

Real packets and messages: RTP/RTCP built by the project's own serializers and by aiortc's, VP8 and
H.264 payload headers of real encoders' shapes, Chromium-shaped offers (tests/max_payloads.py) and
aiortc's own offers and answers, and every client event with the payloads the tests send.
"""

from __future__ import annotations

import asyncio
import json
import struct
import sys
from pathlib import Path

from fuzz import CORPUS

ROOT = Path(__file__).resolve().parent.parent


def rtp_seeds() -> dict[str, bytes]:
    from aiortc.rtp import RtpPacket

    from media.rtp_packet import build_rtp

    key = bytes([0x90, 0x80, 0x05, 0x10, 0x00, 0x9D, 0x01, 0x2A]) + b"k" * 40
    out = {
        "vp8-keyframe-mid-abs": build_rtp(payload_type=96, sequence_number=7, timestamp=90000, ssrc=1111,
                                          payload=key, marker=1, extensions=[(4, b"1"), (2, b"\x01\x02\x03")]),
        "vp8-delta": build_rtp(payload_type=96, sequence_number=8, timestamp=93000, ssrc=1111,
                               payload=bytes([0x90, 0x80, 0x06, 0x11, 0x01]) + b"d" * 30),
        "opus-level": build_rtp(payload_type=111, sequence_number=9, timestamp=960, ssrc=5555,
                                payload=b"\xfc" + b"o" * 20, extensions=[(1, b"\x9a"), (4, b"0")]),
        "rtx-of-96": build_rtp(payload_type=97, sequence_number=1, timestamp=90000, ssrc=2222,
                               payload=b"\x00\x07" + key),
        "unsignalled-by-mid": build_rtp(payload_type=100, sequence_number=3, timestamp=1, ssrc=9999,
                                        payload=key, extensions=[(4, b"2")]),
        "plain": build_rtp(payload_type=0, sequence_number=65535, timestamp=0xFFFFFFFF, ssrc=0, payload=b"\xff" * 8),
    }
    # Padding, CSRCs and the two-byte header extension form, by hand.
    padded = bytearray(build_rtp(payload_type=97, sequence_number=2, timestamp=5, ssrc=2222, payload=b"\x00" * 3 + b"\x04"))
    padded[0] |= 0x20
    out["rtx-padding-only"] = bytes(padded)
    out["csrc-list"] = bytes([0x82, 96]) + struct.pack("!HII", 4, 7, 1111) + struct.pack("!II", 1, 2) + key
    two_byte = struct.pack("!BBHII", 0x90, 96, 5, 6, 1111) + struct.pack("!HH", 0x1000, 2) + bytes([4, 1, 0x31, 0, 2, 2, 9, 9])
    out["two-byte-extensions"] = two_byte + key
    # aiortc's own serializer (what a Python publisher sends).
    packet = RtpPacket(payload_type=96, sequence_number=10, timestamp=99, ssrc=1111, payload=key, marker=1)
    out["aiortc-serialized"] = packet.serialize()
    return out


def rtcp_seeds() -> dict[str, bytes]:
    from aiortc.rtp import RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket

    from media.rtcp import ReportBlock, build_fir, build_nack, build_pli, build_rr, build_sdes_cname, build_sr

    block = ReportBlock(ssrc=3333, fraction_lost=12, packets_lost=-3, highest_sequence=70000, jitter=20, lsr=0, dlsr=0)
    remb = struct.pack("!BBHII", 0x8F, 206, 5, 1, 0) + b"REMB" + bytes([2, 0x0A, 0x12, 0x34]) + struct.pack("!II", 3333, 6666)
    bye = struct.pack("!BBHII", 0x82, 203, 2, 3333, 6666)
    padded_pli = bytearray(build_pli(1, 3333) + b"\x00\x00\x00\x04")
    padded_pli[0] |= 0x20
    padded_pli[2:4] = struct.pack("!H", 3)
    aiortc_rr = RtcpRrPacket(ssrc=9, reports=[RtcpReceiverInfo(ssrc=3333, fraction_lost=1, packets_lost=2,
                                                               highest_sequence=3, jitter=4, lsr=5, dlsr=6)])
    return {
        "sr": build_sr(1111, 0x0123456789ABCDEF, 90000, 10, 1000),
        "rr-block": build_rr(1, [block]),
        "rr-sdes-compound": build_rr(1, [block]) + build_sdes_cname(1, "cname"),
        "nack": build_nack(1, 3333, [100, 101, 103, 120, 65535, 0]),
        "nack-rtx-slot": build_nack(1, 3333, [0x7F00, 0x7F01]),
        "pli": build_pli(1, 3333),
        "pli-padded": bytes(padded_pli),
        "fir": build_fir(1, 3333, 7),
        "remb": remb,
        "bye": bye,
        "sr-then-nack": build_sr(1111, 1 << 40, 5, 1, 1) + build_nack(1, 6666, [5]),
        "aiortc-rr": bytes(aiortc_rr),
        "aiortc-pli": bytes(RtcpPsfbPacket(fmt=1, ssrc=1, media_ssrc=3333)),
    }


def vp8_seeds() -> dict[str, bytes]:
    return {
        "keyframe": bytes([0x10, 0x00, 0x9D, 0x01, 0x2A]),
        "delta": bytes([0x10, 0x01]),
        "continuation": bytes([0x00, 0x00]),
        "x-i7-keyframe": bytes([0x90, 0x80, 0x05, 0x00]),
        "x-i15-l-t-keyframe": bytes([0x90, 0xE0, 0x80, 0x05, 0x02, 0x40, 0x00]),
        "x-k-delta": bytes([0x90, 0x10, 0x20, 0x01]),
        "partition-2": bytes([0x12, 0x00]),
        "truncated-x": bytes([0x90]),
        "h264-idr": bytes([0x65, 0x88]),
        "h264-stap-a-sps": bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]),
        "h264-fu-a-idr-start": bytes([0x7C, 0x85, 0x00]),
    }


def _aiortc_sdps() -> dict[str, bytes]:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcconfiguration import RTCBundlePolicy

    from media.slot_transport import slot_codec_preferences

    async def make() -> dict[str, bytes]:
        publisher = RTCPeerConnection()
        publisher.addTransceiver("audio", direction="sendonly")
        publisher.addTransceiver("video", direction="sendonly")
        offer = await publisher.createOffer()
        server = RTCPeerConnection()
        await server.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        answer = await server.createAnswer()
        # A receiving connection's one offer (stage audio + video, two thumbnails, an extra voice, as
        # media/slot_transport.py builds it) and a max-bundle aiortc subscriber's answer to it.
        slots = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        for kind in ("audio", "video", "video", "video", "audio"):
            slots.addTransceiver(kind, direction="sendonly").setCodecPreferences(slot_codec_preferences(kind))
        await slots.setLocalDescription(await slots.createOffer())
        subscriber = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        await subscriber.setRemoteDescription(slots.localDescription)
        slots_answer = await subscriber.createAnswer()
        for pc in (publisher, server, slots, subscriber):
            await pc.close()
        return {"aiortc-offer": offer.sdp.encode(), "aiortc-answer": answer.sdp.encode(),
                "aiortc-slots-answer": slots_answer.sdp.encode()}

    return asyncio.run(make())


def sdp_seeds() -> dict[str, bytes]:
    def crlf(lines: list[str]) -> bytes:
        return "".join(line + "\r\n" for line in lines).encode()

    out = {"minimal": b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}
    sys.path.insert(0, str(ROOT / "tests"))
    try:  # Chromium-shaped offers (tests/max_payloads.py); without it the files already kept stay
        from max_payloads import chromium_offer
    except ImportError:
        chromium_offer = None
    if chromium_offer is not None:
        out.update({
            "chromium-audio-video": crlf(chromium_offer(("audio", "video"))),
            "chromium-audio": crlf(chromium_offer(("audio",))),
            "chromium-four": crlf(chromium_offer()),
            "lf-only": crlf(chromium_offer(("video",))).replace(b"\r\n", b"\n"),
        })
    out.update(_aiortc_sdps())
    return out


def signaling_seeds() -> dict[str, bytes]:
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    messages = {
        "join": ["join", {"last_n": 9, "client": "room"}],
        "publish": ["publish", {"sdp": sdp}],
        "subscribe": ["subscribe", {}],
        "answer": ["answer", {"sdp": sdp, "revision": 1}],
        "mute": ["mute", {"kind": "audio", "muted": True}],
        "set-last-n": ["set_last_n", {"n": 0}],
        "restart": ["restart", {"transport": "recv"}],
        "leave": ["leave", {}],
        "ping": ["ping"],
        "raise-hand": ["raise_hand", {}],
        "stats": ["stats", {"rtt_ms": 250.5, "loss_percent": 3, "bitrate_kbps": None}],
        "moderate": ["moderate", {"action": "mute", "participant_id": "p-7.abc"}],
        "agenda": ["set_agenda_item", {"item_id": None}],
        "vote-open": ["vote_open", {"item_id": 4, "question": "Adopt the budget?"}],
        "vote-cast": ["vote_cast", {"vote_id": 3, "choice": "abstain"}],
        "vote-close": ["vote_close", {"vote_id": 3}],
        "vote-state": ["vote_state", {}],
        "session": ["session", {"action": "open"}],
        "floor-grant": ["floor", {"action": "grant", "participant_id": "p-2", "limit_seconds": 300}],
        "roll-call": ["roll_call", {"action": "answer"}],
        "excuse": ["excuse", {"office_id": 12, "reason": "flooded roads"}],
        "register": ["register", {}],
        "unknown-event": ["no_such_event", {}],
        "reserved-connect": ["connect", {"token": "x.y"}],
        "extra-args": ["ping", {}, 1, 2],
        "bad-types": ["mute", {"kind": 1, "muted": "yes", "extra": [1, {"a": None}]}],
        "auth-token": ["join", {"token": "eyJ2IjoxfQ.c2ln"}],
    }
    return {name: json.dumps(message, ensure_ascii=False).encode() for name, message in messages.items()}


SEEDS = {"rtp": rtp_seeds, "rtcp": rtcp_seeds, "vp8": vp8_seeds, "sdp": sdp_seeds, "signaling": signaling_seeds}


def write(name: str) -> int:
    directory = CORPUS / name
    directory.mkdir(parents=True, exist_ok=True)
    seeds = SEEDS[name]()
    for seed, data in seeds.items():
        (directory / f"seed-{seed}").write_bytes(data)
    return len(seeds)


if __name__ == "__main__":
    for target_name in sys.argv[1:] or list(SEEDS):
        print(target_name, write(target_name))
