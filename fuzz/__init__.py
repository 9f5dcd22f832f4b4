"""Fuzzing the parsers that face the network (atheris: libFuzzer, coverage-guided).

One module per target, each with ``one_input(data: bytes) -> None`` that returns quietly on any input
the product handles as documented (a parse refused with its error class, a message refused with an
``invalid`` answer...) and raises on a real defect: an unexpected exception, or a broken property.

    rtp        media/rtp_packet.py: RtpPacketView.parse, header extensions (RFC 8285), RTX unwrap, then
               the forwarding path (producer -> slot rewrite, NACK history, keyframe gate); every
               packet the SFU emits must parse again
    rtcp       media/rtcp.py: parse_compound, then dispatch_rtcp into a live producer/slot pair
               (NACK retransmissions, PLI/FIR, REMB, RTT from report blocks); the builders' round trip
    vp8        media/keyframe.py: the VP8 payload descriptor (RFC 7741) checked against an independent
               reading of the RFC, and the H.264 keyframe test (RFC 6184); media/vp8_descriptor.py:
               PictureID / TL0PICIDX read and rewritten in place (slots)
    sdp        signaling/validation.py's SDP checks (publish and answer), then what the server does with
               an accepted offer: aiortc's parse and setRemoteDescription + createAnswer, then what
               WebRtcTransport.produce reads (negotiated parameters, remote_ssrcs); and with an answer,
               what accept_answer does for each slot's m-line (negotiation, Slot.configure)
    signaling  every client event through MeetingNamespace.trigger_event (dispatch, schemas, acks) with
               arbitrary JSON values, and the join token of the connect auth

``python -m fuzz <target|all> --runs N`` runs the campaign (see fuzz/__main__.py); the corpora live in
fuzz/corpus/<target>/; tests/test_fuzz.py replays them and runs a short campaign of each target.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

#: name -> (largest input in bytes, the packages atheris instruments for coverage)
SETTINGS: dict[str, tuple[int, tuple[str, ...]]] = {  # slowest first: `all --jobs 2` ends sooner
    # A four-section Chromium offer is ~9 KB (the validator's own limit is the 256 KiB message).
    "sdp": (16384, ("signaling.validation", "media", "aiortc.sdp", "aiortc.rtcpeerconnection", "fuzz")),
    "signaling": (4096, ("signaling", "meetings.tokens", "fuzz")),
    "rtp": (1500, ("media", "fuzz")),  # one Ethernet MTU: SRTP over UDP never carries more
    "rtcp": (1500, ("media", "fuzz")),
    "vp8": (64, ("media.keyframe", "media.vp8_descriptor", "fuzz")),  # descriptor <= 6 bytes, VP8 header 3: the rest is never read
}
TARGETS = tuple(SETTINGS)
CORPUS = Path(__file__).resolve().parent / "corpus"


class Defect(AssertionError):
    """A broken property (the input is accepted but the result is wrong)."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise Defect(message)


def target(name: str) -> ModuleType:
    """The module of target ``name`` (one of TARGETS, or a dotted module path for tests)."""
    return importlib.import_module(f"fuzz.{name}" if name in TARGETS else name)
