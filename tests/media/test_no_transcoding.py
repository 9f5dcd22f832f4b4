"""The server never decodes or encodes: only clients run aiortc codecs."""

from __future__ import annotations

import sys
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
import pytest
from sfu_harness import Harness, recv_frames, wait_for

from media import aiortc_seams as seams


@pytest.fixture
def codec_spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Record which senders create encoders and which receivers start decoder threads."""
    seen: dict[str, list[Any]] = {"encoder_senders": [], "decoder_queues": [], "receive_calls": []}
    original_get_encoder = rtcrtpsender.get_encoder
    original_worker = rtcrtpreceiver.decoder_worker
    original_receive = rtcrtpreceiver.RTCRtpReceiver.receive

    def get_encoder(codec: Any) -> Any:
        seen["encoder_senders"].append(sys._getframe(1).f_locals.get("self"))
        return original_get_encoder(codec)

    def decoder_worker(loop: Any, input_q: Any, output_q: Any, *args: Any) -> None:
        seen["decoder_queues"].append(output_q)
        original_worker(loop, input_q, output_q, *args)

    async def receive(self: Any, parameters: Any) -> None:
        seen["receive_calls"].append(self)
        await original_receive(self, parameters)

    monkeypatch.setattr(rtcrtpsender, "get_encoder", get_encoder)
    monkeypatch.setattr(rtcrtpreceiver, "decoder_worker", decoder_worker)
    monkeypatch.setattr(rtcrtpreceiver.RTCRtpReceiver, "receive", receive)
    return seen


async def test_no_decoder_or_encoder_on_the_server(harness: Harness, codec_spy: dict[str, list[Any]]) -> None:
    alice = await harness.publisher("alice")
    bob = await harness.subscriber("bob", videos=0, audios=0)  # the stage: alice's audio and video
    await wait_for(lambda: len(bob.tracks) == 2)
    for track in bob.tracks:
        await recv_frames(track, 10, timeout=15)
    assert {bob.slot("stage-audio").source, bob.slot("stage-video").source} == set(alice.producers.values())

    server_pcs = [t.peer_connection for t in harness.router.transports.values()]
    server_receivers = [t.receiver for pc in server_pcs for t in pc.getTransceivers()]
    server_senders = [t.sender for pc in server_pcs for t in pc.getTransceivers()]
    assert len(server_receivers) == 4

    # The spies work: the clients did encode and decode.
    assert any(s in codec_spy["encoder_senders"] for s in alice.pc.getSenders())
    client_queues = [r.track._queue for r in bob.pc.getReceivers()]
    assert all(any(q is cq for q in codec_spy["decoder_queues"]) for cq in client_queues)

    # The server did not.
    assert not any(s in codec_spy["encoder_senders"] for s in server_senders)
    assert not any(r in codec_spy["receive_calls"] for r in server_receivers)
    assert not any(seams.decoder_started(r) for r in server_receivers)
    server_queues = [r.track._queue for r in server_receivers if r.track is not None]
    assert not any(q is sq for q in codec_spy["decoder_queues"] for sq in server_queues)
