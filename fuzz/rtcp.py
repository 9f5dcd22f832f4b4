"""RTCP target: one decrypted compound packet from a publisher or a subscriber.

Documented refusal: ``ValueError`` from parse_compound (the transport counts it as malformed).
Properties of an accepted packet:
  * every field is in range (SSRCs 32 bits, sequence numbers 16 bits, 24-bit signed loss...);
  * the builders the SFU uses give back what was parsed (receiver reports, NACK sets, PLI);
  * dispatch_rtcp into a live, primed forwarding path (NACK retransmissions from the history, PLI/FIR
    to the publisher, REMB, RTT from report blocks) never raises, and everything it sends parses.
"""

from __future__ import annotations

from fuzz import _media, check
from media.rtcp import (
    Bye,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    SenderReport,
    build_nack,
    build_pli,
    build_rr,
    parse_compound,
)


_U32 = range(0, 1 << 32)


def _check_packet(packet: object) -> None:
    if isinstance(packet, (SenderReport, ReceiverReport)):
        check(packet.ssrc in _U32 and len(packet.reports) <= 31, "report header out of range")
        for block in packet.reports:
            check(block.ssrc in _U32 and 0 <= block.fraction_lost <= 255
                  and -(1 << 23) <= block.packets_lost < (1 << 23), "report block out of range")
        if isinstance(packet, ReceiverReport):
            again = parse_compound(build_rr(packet.ssrc, packet.reports))
            check(again == [packet], "receiver report does not survive build_rr")
    elif isinstance(packet, Nack):
        check(all(0 <= seq <= 0xFFFF for seq in packet.lost), "NACK sequence number out of range")
        if packet.lost:
            again = parse_compound(build_nack(packet.ssrc, packet.media_ssrc, packet.lost))
            check(len(again) == 1 and isinstance(again[0], Nack) and set(again[0].lost) == set(packet.lost),
                  "NACK does not survive build_nack")
    elif isinstance(packet, Pli):
        check(parse_compound(build_pli(packet.ssrc, packet.media_ssrc)) == [packet], "PLI does not survive build_pli")
    elif isinstance(packet, Fir):
        check(all(s in _U32 and 0 <= n <= 255 for s, n in packet.entries), "FIR entry out of range")
    elif isinstance(packet, Remb):
        check(packet.bitrate >= 0 and len(packet.ssrcs) <= 255, "REMB out of range")
    elif isinstance(packet, Bye):
        check(len(packet.sources) <= 31, "BYE lists more than 31 sources")
    else:
        raise AssertionError(f"parse_compound returned {type(packet).__name__}")


def one_input(data: bytes) -> None:
    try:
        packets = parse_compound(data)
    except ValueError:
        packets = None
    if packets is not None:
        for packet in packets:
            _check_packet(packet)
        # The live path (a packet that does not parse stops at the same ValueError there).
        _media.run(lambda path: path.on_rtcp(data))
