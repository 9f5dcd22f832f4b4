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


def _partial_frame(src, packets: int, of: int, arrival_ms: int) -> None:  # type: ignore[no-untyped-def]
    """The first ``packets`` packets of a ``of``-packet delta frame of ``src``."""
    from slot_helpers import vp8_payload

    for i in range(packets):
        src.feed(vp8_payload(src.picture_id, src.tl0, key=False, start=i == 0), marker=int(i == of - 1),
                 arrival_ms=arrival_ms)


def started_on_a():  # type: ignore[no-untyped-def]
    """Two sources; a slot that started on ``a``'s keyframe (2 packets)."""
    a = make_source("a", ssrc=1000, seq=100, ts=1000, picture_id=10, tl0=1)
    b = make_source("b", ssrc=2000, seq=500, ts=9000, picture_id=700, tl0=9)
    sink = make_slot()
    t0 = monotonic_ms()
    sink.slot.switch_to(a.producer)
    a.frame(key=True, packets=2, arrival_ms=t0)
    return a, b, sink, sink.slot, t0


async def test_a_video_switch_finishes_the_old_frame_in_flight_then_holds_the_old_source() -> None:
    a, b, sink, slot, t0 = started_on_a()
    a.frame(packets=3, arrival_ms=t0 + 66)
    _partial_frame(a, 1, 3, t0 + 133)  # a frame of a in flight when the switch comes
    slot.switch_to(b.producer)
    for i in (1, 2):  # the rest of that frame still goes out: the subscriber gets it whole
        a.feed(b"\x00" * 20, marker=int(i == 2), arrival_ms=t0 + 134)
    sent_after_frame = len(sink.media())
    assert sink.media()[-1].marker == 1
    a.frame(packets=3, arrival_ms=t0 + 200)  # a's next frame: held back, never cut short
    assert len(sink.media()) == sent_after_frame and slot.stats.held_drops == 3
    b.frame(key=True, packets=2, arrival_ms=t0 + 210)
    assert slot.source is b.producer and len(sink.media()) == sent_after_frame + 2
    a.frame(packets=2, arrival_ms=t0 + 230)  # detached
    assert len(sink.media()) == sent_after_frame + 2


async def test_switching_back_to_a_held_source_restarts_it_at_a_keyframe() -> None:
    a, b, sink, slot, t0 = started_on_a()
    slot.switch_to(b.producer)
    a.frame(packets=2, arrival_ms=t0 + 66)  # a's frame completes, then a is held
    a.frame(packets=2, arrival_ms=t0 + 133)
    sent = len(sink.media())
    assert slot.stats.held_drops == 2
    plis = a.plis()
    slot.switch_to(a.producer)  # back before b's keyframe: a skipped a frame, so a restarts at a keyframe
    assert slot.pending is None and a.plis() >= plis  # asked (or throttled and sent later)
    a.frame(packets=2, arrival_ms=t0 + 200)  # a delta: not sent
    assert len(sink.media()) == sent
    a.frame(key=True, packets=2, arrival_ms=t0 + 266)
    assert len(sink.media()) == sent + 2
    out = sink.media()
    assert all((y.sequence_number - x.sequence_number) & 0xFFFF == 1 for x, y in zip(out, out[1:]))


async def test_emptying_a_video_slot_waits_for_the_end_of_the_frame_in_flight() -> None:
    a, _, sink, slot, t0 = started_on_a()
    _partial_frame(a, 1, 3, t0 + 66)
    slot.switch_to(None)  # mid-frame: the rest of the frame still goes out, then the slot is empty
    assert slot.source is a.producer and len(sink.switches) == 1
    a.feed(b"\x00" * 20, marker=0, arrival_ms=t0 + 67)
    a.feed(b"\x00" * 20, marker=1, arrival_ms=t0 + 68)
    assert slot.source is None and sink.media()[-1].marker == 1 and len(sink.media()) == 5
    assert [e.producer_id for e, _ in sink.switches] == ["a", None]
    a.frame(packets=2, arrival_ms=t0 + 133)
    assert len(sink.media()) == 5
    # At a frame boundary the slot empties at once.
    slot.switch_to(a.producer)
    a.frame(key=True, packets=2, arrival_ms=t0 + 200)
    slot.switch_to(None)
    assert slot.source is None and [e.producer_id for e, _ in sink.switches] == ["a", None, "a", None]
