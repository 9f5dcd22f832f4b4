"""A node's link cap on its pipe (provincial_nodes/pipe_link.py, provincial_nodes/config.py): the node's
configured downlink crosses the control channel (``pipe_link``), the centre checks it, and each tick the
sending end's cameras get the temporal layers that fit, the floor holder's first; the console's summary
shows the cap, the working limit, the layers and what was thinned. The thinning itself:
tests/media/test_pipe_thinning.py."""

from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import pytest

from cabinet.config import load_config
from cabinet.errors import ConfigError
from media import Router
from media.pipe import PipedTrack, PipeReceiver
from media.producer import Producer
from media.rewriter import ExtensionIds
from media.rtp_packet import RtpPacketView, build_rtp
from provincial_nodes.config import ProvincialNodesConfig
from provincial_nodes.pipe_link import MeetingShare, PipeLink
from test_pipe_link import Gate


def track(n: int, kind: str) -> PipedTrack:
    audio = kind == "audio"
    return PipedTrack(f"{kind}-{n}", f"p{n}", f"s{n}", kind, "0" if audio else "1",
                      "audio/opus" if audio else "video/VP8", 48000 if audio else 90000, 2 if audio else None,
                      111 if audio else 96, 1000 + n * 2 + audio, ExtensionIds(1, 2, 3))


def three_layers(camera: Producer, ssrc: int) -> None:
    """An L1T3 group (TL0, TL2, TL1, TL2) into ``camera``: its layer rates start from a typical
    stream's (200 / 320 / 500 kbit/s)."""
    for seq, tid in enumerate((0, 2, 1, 2)):
        descriptor = bytes([0x90, 0xE0]) + struct.pack("!H", 0x8000 | seq) + bytes([0, tid << 6 | 0x20])
        data = build_rtp(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc,
                         payload=descriptor + b"\x01" + b"D" * 40, marker=1)
        camera.handle_rtp(RtpPacketView.parse(data))


async def test_the_nodes_downlink_is_checked_and_bad_values_change_nothing() -> None:
    sent: list[dict[str, Any]] = []

    async def frames(frame: dict[str, Any]) -> None:
        sent.append(frame)

    link = PipeLink("centre", Gate(), frames, tag="node1")
    try:
        await link.handle_frame({"type": "pipe_link", "downlink_kbps": 1500})
        assert link.pipe.sender.stats.cap_kbps == 1500 and link.pipe.sender.limit.limit_bps == 1_500_000
        assert not sent and link.refusals == 0
        for bad in (-1, 10, 20_000_000, "1500", 1500.0, True, None, [1500]):
            await link.handle_frame({"type": "pipe_link", "downlink_kbps": bad})
        await link.handle_frame({"type": "pipe_link"})
        assert link.refusals == 9 and len(sent) == 9
        assert all(f["type"] == "pipe_refused" and "downlink_kbps" in f["message"] for f in sent)
        assert link.summary().cap_kbps == 1500, "nothing changed"
        await link.handle_frame({"type": "pipe_link", "downlink_kbps": 0})
        assert link.summary().cap_kbps == 0 and link.summary().limit_kbps is None, "0: no cap"
    finally:
        await link.close()


async def test_each_tick_the_floor_holders_camera_takes_the_upper_layers_first() -> None:
    router = Router(router_id="centre")
    elsewhere = PipeReceiver(lambda data: None, tag="publishers")  # producers of this router, not of the link
    producers = {f"{kind}-{n}": elsewhere.add(track(n, kind), into=router.add_producer)
                 for n in (1, 2) for kind in ("audio", "video")}
    for n in (1, 2):
        three_layers(producers[f"video-{n}"], 1000 + n * 2)
    link = PipeLink("centre", Gate(), lambda frame: _nothing(), tag="node1")  # type: ignore[arg-type,return-value]
    room = SimpleNamespace(router=router, meeting_id=1, participants={}, remote={}, remote_via=lambda pid: None)
    share = link.shares[1] = MeetingShare(room)  # type: ignore[arg-type]
    try:
        share.far_wants = frozenset(producers)
        link._retap(share)
        # two voices 90k, two TL0 400k: 130k left of 620k, the first camera's TL1 (120k) fits, its TL2 not
        await link.handle_frame({"type": "pipe_link", "downlink_kbps": 620})
        router.floor_holder = "p2"
        link.rebalance()
        summary = link.summary()
        assert summary.layers == {"video-1": 0, "video-2": 1}
        assert (summary.cap_kbps, summary.limit_kbps, summary.over_limit) == (620, 620, False)
        assert link.pipe.sender.taps["audio-1"].target_layer == 2, "audio is never thinned"
        router.floor_holder = None
        router.speaker_order = ["p1", "p2"]
        link.rebalance()
        assert link.summary().layers == {"video-1": 1, "video-2": 0}, "then the most recent speaker's"
        await link.handle_frame({"type": "pipe_link", "downlink_kbps": 400})
        link.rebalance()
        summary = link.summary()
        assert summary.layers == {"video-1": 0, "video-2": 0} and summary.over_limit, "TL0 crosses anyway"
    finally:
        await link.close()
        elsewhere.close()
        await router.close()


async def _nothing() -> None:
    return None


def test_the_configured_link_is_validated() -> None:
    loaded = load_config(env={"CABINET_PROVINCIAL_NODES__DOWNLINK_KBPS": "2000"}).provincial_nodes
    assert (loaded.downlink_kbps, loaded.uplink_kbps) == (2000, 0)
    with pytest.raises(ConfigError, match="uplink_kbps"):
        load_config(env={"CABINET_PROVINCIAL_NODES__UPLINK_KBPS": "30"})
    assert ProvincialNodesConfig(downlink_kbps=2000, uplink_kbps=1000).validate() == []
    assert ProvincialNodesConfig().validate() == [], "0: no cap"
    for bad in (-1, 63, 10_000_001):
        names = [name for name, _ in ProvincialNodesConfig(downlink_kbps=bad, uplink_kbps=bad).validate()]
        assert names == ["downlink_kbps", "uplink_kbps"]
