"""Pipes (media/pipe.py): a producer mirrored across a real UDP flow on loopback, recovered hop by hop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from slot_helpers import make_source

from media.pipe import PipedTrack, PipeError, PipeReceiver, PipeSender, is_rtcp
from media.producer import Producer
from media.rtcp import build_nack, build_pli
from media.rtp_packet import RtpPacketView


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data)


@dataclass
class Capture:
    """A sink on a mirror: what local subscribers would get."""

    seqs: list[int] = field(default_factory=list)
    forwarding: bool = True

    def forward(self, packet: RtpPacketView, abs_send_time: bytes) -> None:
        self.seqs.append(packet.sequence_number)

    def on_producer_state(self) -> None: ...

    def send_sender_report(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Pipe:
    sender: PipeSender
    receiver: PipeReceiver
    mirrors: list[Producer]
    drop: set[int]  # sequence numbers the centre -> node direction loses once


@pytest.fixture
async def pipe() -> AsyncIterator[Pipe]:
    loop = asyncio.get_running_loop()
    holder: dict[str, object] = {}
    drop: set[int] = set()

    def to_node(data: bytes) -> None:
        if not is_rtcp(data) and len(data) >= 4:
            seq = int.from_bytes(data[2:4], "big")
            if seq in drop:
                drop.discard(seq)
                return
        holder["receiver"].handle_datagram(data)  # type: ignore[attr-defined]

    centre_end = Endpoint(lambda d: holder["sender"].handle_rtcp(d))  # type: ignore[attr-defined]
    node_end = Endpoint(to_node)
    centre_t, _ = await loop.create_datagram_endpoint(lambda: centre_end, local_addr=("127.0.0.1", 0))
    node_t, _ = await loop.create_datagram_endpoint(lambda: node_end, local_addr=("127.0.0.1", 0))
    node_addr = node_t.get_extra_info("sockname")
    centre_addr = centre_t.get_extra_info("sockname")
    sender = PipeSender(lambda d: centre_t.sendto(d, node_addr))
    mirrors: list[Producer] = []
    receiver = PipeReceiver(lambda d: node_t.sendto(d, centre_addr) or True, mirrors.append)
    holder.update(sender=sender, receiver=receiver)
    yield Pipe(sender, receiver, mirrors, drop)
    sender.close()
    receiver.close()
    centre_t.close()
    node_t.close()


async def settle(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_a_piped_producer_crosses_once_with_its_ids_and_its_numbers(pipe: Pipe) -> None:
    cam = make_source("cam", ssrc=4000, seq=100)
    track = PipedTrack.from_dict(pipe.sender.attach(cam.producer).to_dict())  # through the control channel
    mirror = pipe.receiver.add(track)
    assert pipe.mirrors == [mirror] and mirror.id == "cam" and mirror.participant_id == "cam-person"
    local = [Capture(), Capture(), Capture()]  # three local subscribers
    for capture in local:
        mirror.sinks.append(capture)
    mirror.refresh_active()
    for _ in range(20):
        cam.frame(packets=2)
    await settle(lambda: len(local[0].seqs) == 40)
    assert all(c.seqs == list(range(100, 140)) for c in local)
    assert pipe.sender.stats.packets_sent == 40, "one copy crosses, whatever the number of subscribers"
    assert cam.plis() == 1, "the far side starts from a keyframe"


async def test_what_the_pipe_loses_is_asked_for_and_resent_from_history(pipe: Pipe) -> None:
    cam = make_source("cam", ssrc=4100, seq=0)
    mirror = pipe.receiver.add(pipe.sender.attach(cam.producer))
    capture = Capture()
    mirror.sinks.append(capture)
    mirror.refresh_active()
    pipe.drop.update({5, 6, 11})
    for _ in range(10):
        cam.frame(packets=2)
        await asyncio.sleep(0.005)
    await settle(lambda: sorted(capture.seqs) == list(range(20)))
    assert pipe.sender.stats.retransmitted == 3 and mirror.stats.nacked_packets == 3


async def test_keyframe_requests_are_merged_to_one_per_second_per_stream(pipe: Pipe) -> None:
    cam = make_source("cam", ssrc=4200)
    mirror = pipe.receiver.add(pipe.sender.attach(cam.producer))
    cam.frame(key=True)
    await settle(lambda: mirror.stats.packets == 1)
    before = cam.plis()
    for _ in range(10):  # ten local subscribers ask at once
        mirror.request_keyframe()
    await settle(lambda: cam.plis() == before + 1)  # (the publisher's own throttle may hold it 0.5 s)
    await asyncio.sleep(0.2)
    assert pipe.sender.stats.keyframe_requests == 1 and cam.plis() == before + 1


async def test_sender_reports_cross_and_the_far_side_reports_its_loss(pipe: Pipe) -> None:
    from media.rtcp import SenderReport

    cam = make_source("cam", ssrc=4300)
    mirror = pipe.receiver.add(pipe.sender.attach(cam.producer))
    for _ in range(5):
        cam.frame()
    cam.producer.handle_sender_report(SenderReport(ssrc=4300, ntp_timestamp=123 << 32, rtp_timestamp=9000,
                                                   packet_count=5, octet_count=500))
    await settle(lambda: mirror.last_sr is not None)
    assert mirror.last_sr is not None and mirror.last_sr.rtp_timestamp == 9000
    pipe.receiver.report()
    await settle(lambda: 4300 in pipe.sender.stats.remote_loss)


async def test_malformed_and_unknown_datagrams_are_dropped_and_counted(pipe: Pipe) -> None:
    cam = make_source("cam", ssrc=4400)
    mirror = pipe.receiver.add(pipe.sender.attach(cam.producer))
    for bad in (b"", b"\x80", b"\x00" * 20, b"\x80\xc9\x00"):
        pipe.receiver.handle_datagram(bad)
    other = make_source("other", ssrc=9999)
    other.producer.sinks.append(Capture())
    pipe.receiver.handle_datagram(bytes([0x80, 96]) + (1).to_bytes(2, "big") + bytes(4) + (9999).to_bytes(4, "big"))
    pipe.sender.handle_rtcp(b"\x81\xcd\x00\x09garbage")
    pipe.sender.handle_rtcp(build_nack(1, 12345, [1, 2]))  # a stream it never sent
    pipe.sender.handle_rtcp(build_pli(1, 12345))
    assert pipe.receiver.stats.malformed >= 3 and pipe.receiver.stats.unknown_ssrc == 1
    assert pipe.sender.stats.malformed == 1 and pipe.sender.stats.retransmit_misses == 2
    assert mirror.stats.packets == 0


async def test_closing_cascades_both_ways(pipe: Pipe) -> None:
    cam = make_source("cam", ssrc=4500)
    mirror = pipe.receiver.add(pipe.sender.attach(cam.producer))
    cam.producer.close()
    assert "cam" not in pipe.sender.taps
    pipe.receiver.remove("cam")
    assert mirror.closed and "cam" not in pipe.receiver.mirrors
    again = make_source("cam", ssrc=4500)
    assert pipe.receiver.add(pipe.sender.attach(again.producer)) is not mirror, "a new track, a new mirror"


def test_track_descriptions_from_the_wire_are_checked() -> None:
    good = PipedTrack.of(make_source("cam", ssrc=4600).producer).to_dict()
    assert PipedTrack.from_dict(good).to_dict() == good
    for bad in (None, [], dict(good, kind="text"), dict(good, ssrc=-1), dict(good, ssrc=True),
                dict(good, mime_type="audio/opus"), dict(good, producer_id=""), dict(good, ext_ids={"mid": 99}),
                dict(good, payload_type=300), {k: v for k, v in good.items() if k != "participant_id"}):
        with pytest.raises(PipeError):
            PipedTrack.from_dict(bad)


async def test_audio_lost_in_the_pipe_is_recovered_too(pipe: Pipe) -> None:
    voice = make_source("voice", "audio", ssrc=4700, pt=111, seq=50)
    mirror = pipe.receiver.add(pipe.sender.attach(voice.producer))
    capture = Capture()
    mirror.sinks.append(capture)
    mirror.refresh_active()
    pipe.drop.update({53, 60})
    for _ in range(20):
        voice.audio()
        await asyncio.sleep(0.002)
    await settle(lambda: sorted(capture.seqs) == list(range(50, 70)))
    assert pipe.sender.stats.retransmitted == 2
