"""A slot starts a source only while the subscriber's connection is up (no keyframe into a closed link)."""

from __future__ import annotations

from slot_helpers import make_slot, make_source

from media.rtp_packet import monotonic_ms


async def test_a_video_slot_waits_for_the_link_then_asks_for_the_keyframe_it_will_send() -> None:
    a = make_source("a", ssrc=1000, pt=96, seq=100, ts=1000, picture_id=10, tl0=1)
    sink = make_slot()
    slot = sink.slot
    slot.set_link_up(False)  # the transport: negotiated, DTLS not connected yet
    t0 = monotonic_ms()
    slot.switch_to(a.producer)
    assert a.plis() == 0, "no keyframe is asked for while it could not reach the subscriber"
    a.frame(key=True, packets=2, arrival_ms=t0)  # would be lost on a link that is not up: kept waiting
    assert not sink.sent and not sink.switches and slot.pending is a.producer
    assert slot.stats.waiting_link_drops == 2
    slot.set_link_up(True)
    # The link came up: the awaited source is asked now (not held back by the PLI throttle of an
    # earlier, useless request).
    assert a.plis() == 1 and a.producer.stats.keyframe_requests_throttled == 0
    a.frame(key=False, arrival_ms=t0 + 40)  # a delta still waits for that keyframe
    assert not sink.sent and a.plis() == 1, "asked again only after keyframe_retry_ms"
    a.frame(key=True, packets=2, arrival_ms=t0 + 80)
    assert slot.source is a.producer and len(sink.switches) == 1 and len(sink.media()) == 2
    slot.set_link_up(True)  # no change: no new request
    assert a.plis() == 1


async def test_an_audio_slot_starts_at_the_first_packet_after_the_link_is_up() -> None:
    a = make_source("a", ssrc=3000, pt=111, seq=7, ts=480, kind="audio")
    sink = make_slot(kind="audio")
    slot = sink.slot
    slot.set_link_up(False)
    slot.switch_to(a.producer)
    a.frame(arrival_ms=monotonic_ms())
    assert not sink.sent
    slot.set_link_up(True)
    assert a.plis() == 0  # audio never asks for keyframes
    a.frame(arrival_ms=monotonic_ms())
    assert len(sink.media()) == 1 and sink.switches[0][0].producer_id == "a"
