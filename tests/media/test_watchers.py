"""Whether anyone takes a producer's video (media/watchers.py)."""

from __future__ import annotations

from slot_helpers import make_slot, make_source

from media.slot import PAUSED
from media.watchers import WatchTracker, video_watched


async def test_a_video_is_watched_while_a_slot_that_is_not_paused_takes_it() -> None:
    src = make_source("cam", ssrc=100)
    assert not video_watched(src.producer), "no sink"
    sink = make_slot()
    sink.slot.switch_to(src.producer)
    assert video_watched(src.producer), "a pending switch wants it (its keyframe)"
    sink.slot.set_layer(PAUSED)
    assert not video_watched(src.producer)
    sink.slot.set_layer(0)
    assert video_watched(src.producer)


async def test_the_publisher_is_told_after_three_unwatched_seconds_and_at_once_when_watched_again() -> None:
    src = make_source("cam", ssrc=100)
    voice = make_source("mic", "audio", ssrc=200, pt=111)
    tracker = WatchTracker()
    producers = [src.producer, voice.producer]
    assert tracker.update(producers, 0) == []
    assert tracker.update(producers, 2900) == []
    assert tracker.update(producers, 3000) == [(src.producer, False)]
    assert tracker.update(producers, 4000) == [], "told once"
    sink = make_slot()
    sink.slot.switch_to(src.producer)
    assert tracker.update(producers, 4100) == [(src.producer, True)]
    assert tracker.wanted("cam")
    src.producer.close()
    assert tracker.update(producers, 9000) == [] and tracker.wanted("cam"), "a closed producer is forgotten"


async def test_an_audio_publishers_report_carries_its_worst_subscribers_loss() -> None:
    from media.rtcp import ReportBlock
    from media.watchers import downstream_loss

    voice = make_source("mic", "audio", ssrc=200, pt=111)
    voice.audio()
    lossy, clean = make_slot("audio", pt=111, rtx=None, slot_id="audio-0"), make_slot("audio", pt=111, rtx=None)
    for sink in (lossy, clean):
        sink.slot.switch_to(voice.producer)
    lossy.slot.handle_report(ReportBlock(lossy.slot.ssrc, 20, 0, 0, 0, 0, 0))
    assert downstream_loss(voice.producer) == 20
    voice.producer.downstream_loss = downstream_loss(voice.producer)
    block = voice.producer.report_block()
    assert block is not None and block.fraction_lost == 20, "its own uplink lost nothing; a site lost 8 %"
