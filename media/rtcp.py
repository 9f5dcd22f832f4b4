"""RTCP packets the SFU reads and writes (RFC 3550, RFC 4585, RFC 5104, REMB draft).

``parse_compound`` turns one decrypted compound packet into a list of small objects, skipping
types the SFU does not use (SDES, XR, APP...); it raises ValueError with the precise defect.
The ``build_*`` functions serialize the packets the SFU sends.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_RTPFB = 205
RTCP_PSFB = 206

RTPFB_NACK = 1
PSFB_PLI = 1
PSFB_FIR = 4
PSFB_APP = 15

_HEAD = struct.Struct("!BBH")
_SR = struct.Struct("!IQIII")
_BLOCK = struct.Struct("!IB3sIIII")
_FB = struct.Struct("!II")
_NACK_ITEM = struct.Struct("!HH")
_FIR_ITEM = struct.Struct("!IB3x")


@dataclass
class ReportBlock:
    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int


@dataclass
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass
class ReceiverReport:
    ssrc: int
    reports: list[ReportBlock] = field(default_factory=list)


@dataclass
class Nack:
    ssrc: int
    media_ssrc: int
    lost: list[int]


@dataclass
class Pli:
    ssrc: int
    media_ssrc: int


@dataclass
class Fir:
    ssrc: int
    #: (ssrc, command sequence number) of each FCI entry.
    entries: list[tuple[int, int]]


@dataclass
class Remb:
    ssrc: int
    bitrate: int
    ssrcs: list[int]


@dataclass
class Bye:
    sources: list[int]


RtcpPacket = SenderReport | ReceiverReport | Nack | Pli | Fir | Remb | Bye


def _parse_blocks(data: bytes, pos: int, count: int) -> list[ReportBlock]:
    blocks = []
    for _ in range(count):
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, pos)
        packets_lost = int.from_bytes(lost, "big", signed=True)
        blocks.append(ReportBlock(ssrc, fraction, packets_lost, highest, jitter, lsr, dlsr))
        pos += 24
    return blocks


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP packet."""
    packets: list[RtcpPacket] = []
    pos = 0
    length = len(data)
    if length < 4:
        raise ValueError(f"RTCP packet length {length} is less than 4 bytes")
    while pos < length:
        if length < pos + 4:
            raise ValueError("RTCP packet header is truncated")
        b0, packet_type, words = _HEAD.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise ValueError(f"RTCP packet has invalid version {b0 >> 6}")
        count = b0 & 0x1F
        start = pos + 4
        end = start + 4 * words
        if end > length:
            raise ValueError(f"RTCP packet type {packet_type} is truncated")
        if b0 & 0x20:
            if words == 0 or data[end - 1] == 0 or data[end - 1] > 4 * words:
                raise ValueError("RTCP packet padding length is invalid")
            body_end = end - data[end - 1]
        else:
            body_end = end
        size = body_end - start
        pos = end
        if packet_type == RTCP_SR:
            if size < 24 + 24 * count:
                raise ValueError("RTCP sender report length is invalid")
            ssrc, ntp, rtp_ts, pkts, octets = _SR.unpack_from(data, start)
            packets.append(SenderReport(ssrc, ntp, rtp_ts, pkts, octets, _parse_blocks(data, start + 24, count)))
        elif packet_type == RTCP_RR:
            if size < 4 + 24 * count:
                raise ValueError("RTCP receiver report length is invalid")
            ssrc = int.from_bytes(data[start : start + 4], "big")
            packets.append(ReceiverReport(ssrc, _parse_blocks(data, start + 4, count)))
        elif packet_type == RTCP_BYE:
            if size < 4 * count:
                raise ValueError("RTCP bye length is invalid")
            packets.append(Bye([int.from_bytes(data[start + 4 * i : start + 4 * i + 4], "big") for i in range(count)]))
        elif packet_type in (RTCP_RTPFB, RTCP_PSFB):
            if size < 8:
                raise ValueError("RTCP feedback length is invalid")
            ssrc, media_ssrc = _FB.unpack_from(data, start)
            fci = start + 8
            if packet_type == RTCP_RTPFB and count == RTPFB_NACK:
                if (body_end - fci) % 4:
                    raise ValueError("RTCP NACK length is invalid")
                lost: list[int] = []
                for item in range(fci, body_end, 4):
                    pid, blp = _NACK_ITEM.unpack_from(data, item)
                    lost.append(pid)
                    for bit in range(16):
                        if (blp >> bit) & 1:
                            lost.append((pid + bit + 1) & 0xFFFF)
                packets.append(Nack(ssrc, media_ssrc, lost))
            elif packet_type == RTCP_PSFB and count == PSFB_PLI:
                packets.append(Pli(ssrc, media_ssrc))
            elif packet_type == RTCP_PSFB and count == PSFB_FIR:
                if (body_end - fci) % 8:
                    raise ValueError("RTCP FIR length is invalid")
                entries = [_FIR_ITEM.unpack_from(data, item) for item in range(fci, body_end, 8)]
                packets.append(Fir(ssrc, [(e[0], e[1]) for e in entries]))
            elif packet_type == RTCP_PSFB and count == PSFB_APP and data[fci : fci + 4] == b"REMB":
                if body_end - fci < 8:
                    raise ValueError("RTCP REMB length is invalid")
                num = data[fci + 4]
                exponent = data[fci + 5] >> 2
                mantissa = ((data[fci + 5] & 3) << 16) | (data[fci + 6] << 8) | data[fci + 7]
                if body_end - fci < 8 + 4 * num:
                    raise ValueError("RTCP REMB SSRC list is truncated")
                ssrcs = [int.from_bytes(data[fci + 8 + 4 * i : fci + 12 + 4 * i], "big") for i in range(num)]
                packets.append(Remb(ssrc, mantissa << exponent, ssrcs))
        # SDES, APP, XR and unknown types are skipped.
    return packets


def _head(packet_type: int, count: int, payload: bytes) -> bytes:
    return _HEAD.pack(0x80 | count, packet_type, len(payload) // 4) + payload


def _block_bytes(block: ReportBlock) -> bytes:
    lost = max(-(1 << 23), min(block.packets_lost, (1 << 23) - 1)).to_bytes(3, "big", signed=True)
    return _BLOCK.pack(
        block.ssrc,
        block.fraction_lost,
        lost,
        block.highest_sequence & 0xFFFFFFFF,
        block.jitter & 0xFFFFFFFF,
        block.lsr,
        block.dlsr,
    )


def build_sr(
    ssrc: int, ntp_timestamp: int, rtp_timestamp: int, packet_count: int, octet_count: int
) -> bytes:
    payload = _SR.pack(
        ssrc,
        ntp_timestamp & 0xFFFFFFFFFFFFFFFF,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    )
    return _head(RTCP_SR, 0, payload)


def build_rr(ssrc: int, blocks: list[ReportBlock]) -> bytes:
    if len(blocks) > 31:
        raise ValueError("an RTCP receiver report holds at most 31 report blocks")
    payload = ssrc.to_bytes(4, "big") + b"".join(_block_bytes(b) for b in blocks)
    return _head(RTCP_RR, len(blocks), payload)


def build_sdes_cname(ssrc: int, cname: str) -> bytes:
    value = cname.encode("utf8")
    if len(value) > 255:
        raise ValueError("CNAME is longer than 255 bytes")
    chunk = ssrc.to_bytes(4, "big") + bytes([1, len(value)]) + value + b"\x00"
    chunk += b"\x00" * (-len(chunk) & 3)
    return _head(RTCP_SDES, 1, chunk)


def build_nack(ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """Generic NACK; ``lost`` sequence numbers in increasing (wrap-aware) order."""
    if not lost:
        raise ValueError("a NACK needs at least one lost sequence number")
    payload = _FB.pack(ssrc, media_ssrc)
    pid = lost[0]
    blp = 0
    for seq in lost[1:]:
        delta = (seq - pid - 1) & 0xFFFF
        if delta < 16:
            blp |= 1 << delta
        else:
            payload += _NACK_ITEM.pack(pid, blp)
            pid, blp = seq, 0
    payload += _NACK_ITEM.pack(pid, blp)
    return _head(RTCP_RTPFB, RTPFB_NACK, payload)


def build_pli(ssrc: int, media_ssrc: int) -> bytes:
    return _head(RTCP_PSFB, PSFB_PLI, _FB.pack(ssrc, media_ssrc))


def build_fir(ssrc: int, media_ssrc: int, seqnr: int) -> bytes:
    return _head(RTCP_PSFB, PSFB_FIR, _FB.pack(ssrc, 0) + _FIR_ITEM.pack(media_ssrc, seqnr & 0xFF))
