"""A pipe thinned to its link (media/pipe.py, media/layer_thinning.py, media/pipe_budget.py): real VP8 L1T3
packets from a producer through a PipeSender into a PipeReceiver's mirror, every datagram in between
kept. What crosses is renumbered (no gap for the mirror to NACK), its history answers NACKs with the
packet as it crossed, the layers fit the cap (the floor holder's camera first), and the far side's loss
moves the working limit under the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from slot_helpers import Source, make_source, vp8_payload

from media.layer_rates import WIRE_OVERHEAD
from media.layer_thinning import TOP_LAYER
from media.pipe import UP_AFTER_DOWN_MS, PipeError, PipeReceiver, PipeSender, is_rtcp
from media.pipe_budget import LinkLimit, choose_layers
from media.producer import Producer
from media.rtcp import Nack, ReportBlock, build_rr, parse_compound
from media.rtp_packet import RtpPacketView, build_rtp
from media.vp8_descriptor import Vp8Descriptor

#: The L1T3 pattern (libvpx / libwebrtc): TL0, TL2, TL1, TL2; TL1 and the first TL2 depend only on TL0.
PATTERN = ((0, False), (2, True), (1, True), (2, False))


@dataclass
class Wire:
    """Both ends of one pipe, joined in-process; what crosses is kept (and what ``drop`` names lost once)."""

    sender: PipeSender
    receiver: PipeReceiver
    crossed: list[bytes] = field(default_factory=list)
    feedback: list[bytes] = field(default_factory=list)
    #: Sequence numbers (as they cross) the centre -> node direction loses once.
    drop: set[int] = field(default_factory=set)

    def media(self) -> list[RtpPacketView]:
        return [RtpPacketView.parse(d) for d in self.crossed]

    def nacks(self) -> list[int]:
        return [seq for d in self.feedback for p in parse_compound(d) if isinstance(p, Nack) for seq in p.lost]


@dataclass
class Capture:
    """A sink on the mirror: what the node's local slots get."""

    packets: list[RtpPacketView] = field(default_factory=list)
    forwarding: bool = True

    def forward(self, packet: RtpPacketView, abs_send_time: bytes) -> None:
        self.packets.append(packet)

    def on_producer_state(self) -> None: ...

    def send_sender_report(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    holder: list[Wire] = []

    def to_node(data: bytes) -> None:
        w = holder[0]
        if not is_rtcp(data):
            w.crossed.append(data)
            seq = int.from_bytes(data[2:4], "big")
            if seq in w.drop:
                w.drop.discard(seq)
                return
        w.receiver.handle_datagram(data)

    def to_centre(data: bytes) -> None:
        holder[0].feedback.append(data)
        holder[0].sender.handle_rtcp(data)

    mirrors: list[Producer] = []
    w = Wire(PipeSender(to_node), PipeReceiver(to_centre, mirrors.append))
    holder.append(w)
    yield w
    w.sender.close()
    w.receiver.close()


def piped(w: Wire, src: Source) -> tuple[Producer, Capture]:
    mirror = w.receiver.add(w.sender.attach(src.producer))
    capture = Capture()
    mirror.sinks.append(capture)
    mirror.refresh_active()
    return mirror, capture


def camera(name: str = "cam", ssrc: int = 4000) -> Source:
    # numbers near their wrap: sequence numbers, 15-bit PictureIDs, TL0PICIDX
    return make_source(name, ssrc=ssrc, seq=65500, picture_id=32700, tl0=250)


def groups(src: Source, count: int, packets: int = 1) -> None:
    for _ in range(count):
        for tid, sync in PATTERN:
            src.layered(tid, sync=sync, packets=packets)


def frames(views: list[RtpPacketView]) -> list[tuple[int, int, int]]:
    """(PictureID, TL0PICIDX, TID) of each crossed picture's first packet."""
    out = []
    for view in views:
        desc = Vp8Descriptor.parse(view.payload)
        assert desc is not None
        if desc.start_of_frame:
            out.append((desc.picture_id, desc.tl0picidx, desc.tid))
    return out


def contiguous(values: list[int], modulo: int) -> bool:
    return len(values) > 1 and all((b - a) % modulo == 1 for a, b in zip(values, values[1:]))


async def test_at_tl0_a_quarter_of_the_frames_cross_numbered_without_a_gap(wire: Wire) -> None:
    cam = camera()
    mirror, capture = piped(wire, cam)
    wire.sender.taps["cam"].set_target(0)
    cam.layered(0, key=True, sync=True, packets=2)
    groups(cam, 20, packets=2)
    crossed = wire.media()
    pictures = frames(crossed)
    assert [tid for *_, tid in pictures] == [0] * 21, "the keyframe and the twenty TL0 pictures, of 81"
    assert len(crossed) == 42 and wire.sender.stats.layer_drops == 20 * 3 * 2
    assert contiguous([v.sequence_number for v in crossed], 65536), "no gap where TL1/TL2 were dropped"
    assert contiguous([pid for pid, _, _ in pictures], 0x8000), "PictureIDs close up across their wrap"
    assert contiguous([tl0 for _, tl0, _ in pictures], 256), "TL0PICIDX as the publisher numbered it"
    assert not wire.nacks() and mirror.stats.nacks_sent == 0, "the mirror sees no loss"
    assert [v.sequence_number for v in capture.packets] == [v.sequence_number for v in crossed]
    assert {v.ssrc for v in crossed} == {4000}


async def test_every_layer_crosses_untouched_without_a_cap(wire: Wire) -> None:
    cam = camera()
    piped(wire, cam)
    cam.layered(0, key=True, sync=True)
    groups(cam, 3)
    sent = [RtpPacketView.parse(d) for d in wire.crossed]
    assert len(sent) == 13 and wire.sender.stats.layer_drops == 0
    assert [v.sequence_number for v in sent] == [(65500 + i) & 0xFFFF for i in range(13)], "the publisher's numbers"


async def test_going_down_finishes_the_picture_in_flight(wire: Wire) -> None:
    cam = camera()
    piped(wire, cam)
    cam.layered(0, key=True)
    pid, tl0 = cam.picture_id, cam.tl0
    cam.feed(vp8_payload(pid, tl0, key=False, start=True, tid=2), marker=0)
    wire.sender.taps["cam"].set_target(0)
    cam.feed(vp8_payload(pid, tl0, key=False, start=False, tid=2), marker=0)
    cam.feed(vp8_payload(pid, tl0, key=False, start=False, tid=2), marker=1)
    cam.ts += 6000
    cam.picture_id += 1
    groups(cam, 2)
    tids = [v.payload[5] >> 6 for v in wire.media()]
    assert tids == [0, 2, 2, 2, 0, 0], "the TL2 picture in flight is complete, then TL0 only"
    assert contiguous([v.sequence_number for v in wire.media()], 65536)


async def test_going_up_waits_for_a_layer_sync_frame(wire: Wire) -> None:
    cam = camera()
    piped(wire, cam)
    tap = wire.sender.taps["cam"]
    tap.set_target(0)
    cam.layered(0, key=True)
    groups(cam, 1)
    tap.set_target(TOP_LAYER)
    cam.layered(0)
    cam.layered(2, sync=False)  # depends on a TL1 picture the far side never had: not yet
    cam.layered(1, sync=True)  # TL1 with Y: TL1 from here
    cam.layered(2, sync=False)  # still not
    cam.layered(0)
    cam.layered(2, sync=True)  # TL2 with Y: every layer from here
    cam.layered(1, sync=False)
    cam.layered(2, sync=False)
    pictures = frames(wire.media())
    assert [tid for *_, tid in pictures] == [0, 0, 0, 1, 0, 2, 1, 2]
    assert tap.thinning is not None and tap.thinning.layer == TOP_LAYER
    assert wire.sender.stats.layer_switches == 2
    assert contiguous([v.sequence_number for v in wire.media()], 65536)
    assert contiguous([pid for pid, _, _ in pictures], 0x8000)


async def test_a_nack_is_answered_with_the_packet_as_it_crossed(wire: Wire) -> None:
    cam = camera()
    mirror, capture = piped(wire, cam)
    wire.sender.taps["cam"].set_target(0)
    cam.layered(0, key=True, packets=2)
    groups(cam, 2, packets=2)  # the TL0 pictures cross renumbered: 65502.. become 65502, 65503, ...
    lost = (wire.media()[-1].sequence_number + 2) & 0xFFFF  # the second packet of the next TL0 picture
    wire.drop.add(lost)
    groups(cam, 2, packets=2)
    crossed = wire.media()
    first, again = [d for d in wire.crossed if int.from_bytes(d[2:4], "big") == lost]
    assert again == first, "resent exactly as it crossed: its number and PictureID renumbered"
    assert wire.nacks() == [lost] and wire.sender.stats.retransmitted == 1
    assert wire.sender.stats.retransmitted_bytes == len(first) + WIRE_OVERHEAD, "counted as it goes on the wire"
    assert wire.sender.stats.retransmit_misses == 0
    assert crossed[-1].sequence_number != (cam.seq - 1) & 0xFFFF, "(the numbers crossing are not the publisher's)"
    received = [v.sequence_number for v in capture.packets]
    assert sorted(received, key=lambda s: (s - 65500) & 0xFFFF) == [(65500 + i) & 0xFFFF for i in range(10)]
    assert mirror.stats.nacked_packets == 1


async def test_a_late_packet_takes_its_own_number_and_one_of_a_dropped_picture_none(wire: Wire) -> None:
    cam = camera()
    _, capture = piped(wire, cam)
    wire.sender.taps["cam"].set_target(0)
    cam.layered(0, key=True)
    # a TL0 picture of two packets whose second packet comes late (recovered upstream), after a dropped
    # TL2 picture and the next TL0 picture; and a TL2 packet of the dropped picture, late too
    cam.tl0 += 1
    cam.feed(vp8_payload(cam.picture_id, cam.tl0, key=False, start=True), marker=0)
    late_seq, late_ts = cam.seq, cam.ts
    cam.seq += 1
    late = vp8_payload(cam.picture_id, cam.tl0, key=False, start=False)
    cam.ts += 6000
    cam.picture_id += 1
    dropped_seq, dropped_ts = cam.seq, cam.ts
    cam.layered(2, packets=2)
    cam.layered(0)
    cam.feed(late, seq=late_seq, ts=late_ts, marker=1)
    cam.feed(vp8_payload(cam.picture_id - 2, cam.tl0 - 1, key=False, start=False, tid=2), seq=dropped_seq + 1,
             ts=dropped_ts, marker=1)
    crossed = wire.media()
    assert len(crossed) == 4 and crossed[-1].timestamp == late_ts
    assert crossed[-1].sequence_number == (crossed[1].sequence_number + 1) & 0xFFFF, "it fills its own place"
    assert contiguous(sorted(v.sequence_number for v in crossed), 65536)
    assert wire.sender.stats.layer_drops == 2 and wire.sender.stats.late_drops == 1, "its picture did not cross"
    assert wire.nacks() == [crossed[-1].sequence_number], "the mirror asked for the late one only: its hole"
    assert len(capture.packets) == 4


async def test_a_packet_recovered_upstream_crosses_as_the_original(wire: Wire) -> None:
    """The producer unwraps an RTX packet (RFC 4588): what crosses is the original stream's packet."""
    cam = camera()
    _, capture = piped(wire, cam)
    cam.layered(0, key=True)
    payload = vp8_payload(cam.picture_id, cam.tl0 + 1, key=False)
    lost_seq = cam.seq
    cam.seq += 1
    cam.layered(0)
    rtx = build_rtp(payload_type=97, sequence_number=7, timestamp=cam.ts - 6000, ssrc=4001,
                    payload=lost_seq.to_bytes(2, "big") + payload, marker=1)
    cam.producer.handle_rtp(RtpPacketView.parse(rtx))
    recovered = wire.media()[-1]
    assert (recovered.ssrc, recovered.payload_type, recovered.sequence_number) == (4000, 96, lost_seq)
    assert recovered.payload == payload and wire.receiver.stats.unknown_ssrc == 0
    assert [v.sequence_number for v in capture.packets][-1] == lost_seq


async def test_audio_is_never_thinned(wire: Wire) -> None:
    voice = make_source("voice", "audio", ssrc=4700, pt=111, seq=50)
    piped(wire, voice)
    tap = wire.sender.taps["voice"]
    tap.set_target(0)
    assert tap.thinning is None and tap.target_layer == TOP_LAYER
    for _ in range(10):
        voice.audio()
    assert [v.sequence_number for v in wire.media()] == list(range(50, 60))


def test_a_target_out_of_range_is_refused() -> None:
    sender = PipeSender(lambda data: None)
    sender.attach(camera().producer)
    for bad in (-1, 3):
        with pytest.raises(PipeError):
            sender.taps["cam"].set_target(bad)
    for bad in (-1, 10, 20_000_000, True, "1000"):
        with pytest.raises(PipeError):
            sender.set_cap(bad)  # type: ignore[arg-type]
    assert sender.stats.cap_kbps == 0 and sender.limit.limit_bps is None


# -- the choice of layers ------------------------------------------------------------------------------
RATES = (200_000, 320_000, 500_000)


def test_the_layers_fit_the_limit_the_first_camera_first() -> None:
    cameras = [("chair", RATES), ("a", RATES), ("b", RATES)]
    everything = choose_layers(None, 90_000, cameras)
    assert everything.layers == {"chair": 2, "a": 2, "b": 2} and everything.total_bps == 1_590_000
    # audio 90k + three TL0 600k = 690k; then the chair's TL1 (120k) and TL2 (180k), then the others' TL1
    tight = choose_layers(1_120_000, 90_000, cameras)
    assert tight.layers == {"chair": 2, "a": 1, "b": 0} and tight.total_bps == 1_110_000
    assert not tight.over_limit and tight.floor_bps == 690_000 and tight.full_bps == 1_590_000
    smaller = choose_layers(820_000, 90_000, cameras)
    assert smaller.layers == {"chair": 1, "a": 0, "b": 0}
    assert choose_layers(800_000, 90_000, cameras[::-1]).layers == {"b": 0, "a": 0, "chair": 0}
    assert choose_layers(820_000, 90_000, cameras[::-1]).layers == {"b": 1, "a": 0, "chair": 0}


def test_below_every_base_layer_every_camera_still_crosses_at_tl0() -> None:
    choice = choose_layers(300_000, 90_000, [("chair", RATES), ("a", RATES)])
    assert choice.layers == {"chair": 0, "a": 0} and choice.over_limit
    one_layer = choose_layers(300_000, 0, [("screen", (400_000,))])
    assert one_layer.layers == {"screen": TOP_LAYER} and one_layer.over_limit, "nothing to thin"


def two_cameras_and_a_voice() -> PipeSender:
    """A sender tapping two cameras (the chair's, another's) that have sent three layers (the rates start
    from a typical L1T3 stream's: 200k / 320k / 500k) and a voice (45k)."""
    sender = PipeSender(lambda data: None)
    chair, other, voice = camera("chair", 4000), camera("other", 4100), make_source("v", "audio", ssrc=4200, pt=111)
    for src in (chair, other):
        sender.attach(src.producer)
        src.layered(0, key=True)
        groups(src, 1)
    sender.attach(voice.producer)
    return sender


async def test_the_sender_sets_each_taps_target_the_floor_holders_first() -> None:
    sender = two_cameras_and_a_voice()
    sender.set_cap(600)  # audio 45k + two TL0 400k: 155k left, the first camera's TL1 (120k) fits, its TL2 not
    sender.rebalance({"chair-person": 0})
    assert sender.stats.target_layers == {"chair": 1, "other": 0}
    assert sender.taps["chair"].target_layer == 1 and sender.taps["other"].target_layer == 0
    sender.rebalance({"other-person": 0, "chair-person": 1})
    assert sender.stats.target_layers == {"chair": 0, "other": 1}, "the floor went to the other"
    assert sender.stats.limit_kbps == 600 and not sender.stats.over_limit
    sender.set_cap(300)
    sender.rebalance({})
    assert sender.stats.target_layers == {"chair": 0, "other": 0} and sender.stats.over_limit
    sender.set_cap(0)
    sender.rebalance({})
    assert sender.stats.target_layers == {"chair": 2, "other": 2} and sender.stats.limit_kbps is None
    sender.close()


async def test_a_camera_stepped_down_does_not_flip_back_up_at_once() -> None:
    sender = two_cameras_and_a_voice()
    sender.up_after_down_ms = 200  # every step below within one rate sample (400 ms): the rates hold still
    sender.set_cap(600)
    rank = {"chair-person": 0}
    sender.rebalance(rank, now_ms=0)
    assert sender.taps["chair"].target_layer == 1 and sender.taps["other"].target_layer == 0
    sender.limit.limit_bps = 450_000  # the far side's loss lowered the limit: TL1 no longer fits
    sender.rebalance(rank, now_ms=100)
    assert sender.taps["chair"].target_layer == 0
    sender.limit.limit_bps = 600_000
    sender.rebalance(rank, now_ms=250)
    assert sender.taps["chair"].target_layer == 0, "held down a while"
    sender.rebalance(rank, now_ms=300)
    assert sender.taps["chair"].target_layer == 1, "then up again"
    sender.limit.limit_bps = 450_000
    sender.rebalance(rank, now_ms=310)
    assert sender.taps["chair"].target_layer == 0 and sender.taps["other"].target_layer == 0
    sender.limit.limit_bps = 600_000
    sender.rebalance({"other-person": 0, "chair-person": 1}, now_ms=320)
    assert sender.taps["other"].target_layer == 1, "the floor's new holder goes up at once"
    sender.rebalance(rank, now_ms=330)
    assert sender.taps["chair"].target_layer == 1, "the floor back, 20 ms after it was stepped down: up at once"
    assert UP_AFTER_DOWN_MS >= 5000
    sender.close()


async def test_the_pipes_own_resends_leave_less_room_for_the_layers() -> None:
    sender = two_cameras_and_a_voice()
    sender.set_cap(600)  # audio 45k + two TL0 400k: 155k left, the chair's TL1 (120k) fits
    rank = {"chair-person": 0}
    sender.rebalance(rank, now_ms=0)
    assert sender.taps["chair"].target_layer == 1 and sender.stats.retransmit_bps == 0
    # NACKs answered at ~160 kbit/s (each resend counted with its wire overhead) for 0.3 s
    sender.stats.retransmitted_bytes += 160_000 * 3 // 80
    sender.rebalance(rank, now_ms=300)
    assert sender.stats.retransmit_bps > 60_000
    assert sender.taps["chair"].target_layer == 0, "the resends take the room the chair's TL1 had"
    sender.close()


# -- the working limit ------------------------------------------------------------------------------
HIGH = 40  # 15.6 %
LOW = 2  # 0.8 %
MIDDLE = 13  # 5 %


def test_loss_that_stays_high_lowers_the_limit_and_low_loss_raises_it_back_to_the_cap() -> None:
    limit = LinkLimit(1000)
    limit.floor_bps = 300_000
    assert limit.limit_bps == 1_000_000
    limit.on_report(HIGH, 900_000, 0)
    assert limit.limit_bps == 1_000_000, "one lossy report is not enough"
    limit.on_report(LOW, 900_000, 1000)
    limit.on_report(HIGH, 900_000, 2000)
    assert limit.limit_bps == 1_000_000, "nor two that are not running"
    limit.on_report(HIGH, 900_000, 3000)
    assert limit.limit_bps == 765_000, "0.85 x what crossed"
    limit.on_report(HIGH, 700_000, 4000)
    limit.on_report(HIGH, 700_000, 5000)
    assert limit.limit_bps == 595_000
    limit.on_report(MIDDLE, 500_000, 6000)
    assert limit.limit_bps == 595_000, "between 2 % and 10 % it holds"
    limit.on_report(HIGH, 500_000, 6200)
    assert limit.limit_bps == 595_000, "a report within 500 ms of the last is not another one"
    seen = []
    for i in range(20):
        limit.on_report(LOW, 500_000, 7000 + 1000 * i)
        seen.append(limit.limit_bps)
    assert seen[0] == 595_000 + 47_600, "8 % a report"
    assert all(b >= a for a, b in zip(seen, seen[1:])) and seen[-1] == 1_000_000 == max(seen), "never above the cap"
    limit.on_report(HIGH, 100_000, 40_000)
    limit.on_report(HIGH, 100_000, 41_000)
    assert limit.limit_bps == 300_000, "never below what must cross (audio and every TL0)"


def test_without_a_cap_loss_sets_a_limit_until_everything_fits_again() -> None:
    limit = LinkLimit(0)
    limit.full_bps = 900_000
    limit.on_report(HIGH, 1_000_000, 0)
    limit.on_report(HIGH, 1_000_000, 1000)
    assert limit.limit_bps == 850_000
    limit.on_report(LOW, 1_000_000, 2000)
    assert limit.limit_bps is None, "what everything takes fits: no limit"


async def test_the_far_sides_reports_move_the_senders_limit(wire: Wire) -> None:
    cam = camera()
    piped(wire, cam)
    wire.sender.set_cap(2000)
    cam.layered(0, key=True)
    groups(cam, 10)

    def report(fraction: int, at_ms: int) -> None:
        block = ReportBlock(ssrc=4000, fraction_lost=fraction, packets_lost=0, highest_sequence=0, jitter=0,
                            lsr=0, dlsr=0)
        wire.sender.handle_rtcp(build_rr(1, [block]), now_ms=at_ms)

    start = wire.sender._reported[2]
    report(HIGH, start + 1000)
    groups(cam, 10)
    report(HIGH, start + 2000)
    stats = wire.sender.stats
    assert stats.link_loss == HIGH and stats.limit_kbps is not None and stats.limit_kbps < 2000
    lowered = stats.limit_kbps
    groups(cam, 10)
    report(LOW, start + 3000)
    assert stats.limit_kbps is not None and lowered < stats.limit_kbps <= 2000
