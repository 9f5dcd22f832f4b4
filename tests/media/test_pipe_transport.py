"""A pipe's SRTP flow over loopback UDP (media/pipe_transport.py): keys per direction, the node dials,
the centre learns and follows its address from authenticated packets only."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from media.pipe_transport import KEY_LENGTH, PipeKeys, PipeTransport, PipeTransportError, new_keys
from media.rtcp import build_pli
from media.rtp_packet import build_rtp


def rtp(seq: int, ssrc: int = 1234) -> bytes:
    return build_rtp(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc, payload=b"v" * 100)


async def settle(condition: Callable[[], bool], seconds: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.01)


async def test_the_node_dials_and_both_directions_carry_rtp_and_rtcp() -> None:
    keys = new_keys()
    at_centre: list[bytes] = []
    at_node: list[bytes] = []
    centre = await PipeTransport.open("centre", keys, at_centre.append, local=("127.0.0.1", 0))
    assert not centre.send(rtp(1)), "the centre cannot send before the node has dialled"
    node = await PipeTransport.open("node", keys, at_node.append, local=("127.0.0.1", 0), remote=centre.local_address)
    try:
        await settle(lambda: centre.remote is not None)
        assert centre.remote == node.local_address and at_centre == [], "the keep-alive is not delivered"
        for seq in range(5):
            assert centre.send(rtp(seq))
        assert centre.send(rtp(2)), "a retransmission (the same packet again) can be sent"
        node.send(build_pli(1, 1234))
        await settle(lambda: len(at_node) == 5 and len(at_centre) == 1 and node.stats.rejected == 1)
        assert at_node == [rtp(seq) for seq in range(5)] and at_centre == [build_pli(1, 1234)]
        # (a copy of a packet that did arrive is a replay: not delivered twice)
    finally:
        node.close()
        centre.close()


async def test_only_authenticated_packets_are_delivered_or_move_the_centre() -> None:
    keys = new_keys()
    at_centre: list[bytes] = []
    centre = await PipeTransport.open("centre", keys, at_centre.append, local=("127.0.0.1", 0))
    node = await PipeTransport.open("node", keys, lambda d: None, local=("127.0.0.1", 0), remote=centre.local_address)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.bind(("127.0.0.1", 0))
    try:
        await settle(lambda: centre.remote == node.local_address)
        other = await PipeTransport.open("node", new_keys(), lambda d: None, local=("127.0.0.1", 0),
                                         remote=centre.local_address)  # someone with the wrong keys
        other.send(rtp(7))
        for junk in (b"", b"\x80\x60" + b"\x00" * 30, rtp(8)):  # plain RTP is not accepted either
            stranger.sendto(junk, centre.local_address)
        await settle(lambda: centre.stats.rejected >= 5)
        assert centre.remote == node.local_address and at_centre == [] and centre.stats.address_changes == 0
        # the node's NAT rebinds: its next packet comes from a new port, and the centre follows it
        stranger.sendto(node._tx.protect(rtp(9)), centre.local_address)
        await settle(lambda: at_centre == [rtp(9)])
        assert centre.remote == stranger.getsockname() and centre.stats.address_changes == 1
        other.close()
    finally:
        stranger.close()
        node.close()
        centre.close()


def test_keys_from_the_control_channel_are_checked() -> None:
    keys = new_keys()
    assert PipeKeys.from_dict(keys.to_dict()) == keys and len(keys.centre_to_node) == KEY_LENGTH
    same = keys.to_dict()
    for bad in (None, {}, {"centre_to_node": "x"}, dict(same, node_to_centre="not base64!"),
                dict(same, node_to_centre="AAAA"), dict(same, node_to_centre=same["centre_to_node"])):
        with pytest.raises(PipeTransportError):
            PipeKeys.from_dict(bad)
    with pytest.raises(PipeTransportError):
        PipeTransport("node", keys, lambda d: None)  # the node must know where the centre is


async def test_a_producer_piped_over_srtp_arrives_whole_at_its_mirror() -> None:
    from slot_helpers import make_source

    from media.pipe import PipeReceiver, PipeSender
    from media.producer import Producer

    keys = new_keys()
    holder: dict[str, object] = {}
    centre = await PipeTransport.open("centre", keys, lambda d: holder["sender"].handle_rtcp(d),  # type: ignore[attr-defined]
                                      local=("127.0.0.1", 0))
    node = await PipeTransport.open("node", keys, lambda d: holder["receiver"].handle_datagram(d),  # type: ignore[attr-defined]
                                    local=("127.0.0.1", 0), remote=centre.local_address)
    sender, mirrors = PipeSender(centre.send), []
    receiver = PipeReceiver(node.send, mirrors.append)
    holder.update(sender=sender, receiver=receiver)
    try:
        await settle(lambda: centre.remote is not None)
        cam = make_source("cam", ssrc=5000, seq=10)
        mirror: Producer = receiver.add(sender.attach(cam.producer))
        for _ in range(10):
            cam.frame(packets=3)
        await settle(lambda: mirror.stats.packets == 30)
        assert receiver.stats.malformed == 0 and centre.stats.rejected == 0
    finally:
        sender.close()
        receiver.close()
        node.close()
        centre.close()


class LossyRelay(asyncio.DatagramProtocol):
    """A UDP relay between the node and the centre that drops the first datagrams each way (a lossy WAN)."""

    def __init__(self, centre: tuple[str, int], drop_up: int, drop_down: int) -> None:
        self.centre = centre
        self.drop = {"up": drop_up, "down": drop_down}
        self.node: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        way = "down" if addr == self.centre else "up"
        if way == "up":
            self.node = addr
        if self.drop[way] > 0:
            self.drop[way] -= 1
            return
        assert self.transport is not None
        target = self.node if way == "down" else self.centre
        if target is not None:
            self.transport.sendto(data, target)


async def test_a_lossy_link_does_not_make_the_node_think_udp_is_blocked() -> None:
    # The node probes until it hears the centre: losing its first keep-alives and the first answers
    # delays that by a few probes, not by a keep-alive period (it would take the pipe over TCP).
    keys = new_keys()
    centre = await PipeTransport.open("centre", keys, lambda _: None, local=("127.0.0.1", 0))
    relay = LossyRelay(centre.local_address, drop_up=3, drop_down=2)
    relay_transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: relay, local_addr=("127.0.0.1", 0))
    node = await PipeTransport.open("node", keys, lambda _: None, local=("127.0.0.1", 0),
                                    remote=relay_transport.get_extra_info("sockname")[:2])
    try:
        await settle(lambda: node.last_received > 0, seconds=2.5)
        sent = node.stats.sent
        await asyncio.sleep(0.6)
        assert node.stats.sent == sent, "once the centre is heard, keep-alives go back to their period"
    finally:
        node.close()
        centre.close()
        relay_transport.close()
