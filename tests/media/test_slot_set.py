"""Slot assignment (pure) and the SlotSet of one subscriber."""

from __future__ import annotations

from slot_helpers import make_source

from media.producer import Producer
from media.rtp_packet import RtpPacketView
from media.slot_assignment import (
    Publisher,
    SlotPlan,
    Wanted,
    assign_slots,
    wanted_streams,
)
from media.slot_report import SlotSwitch
from media.slot_set import SlotSet

PUBS = [Publisher(f"p{i}", audio=f"a{i}", video=f"v{i}") for i in range(20)]


def plan_for(previous: SlotPlan, *, subscriber: str, publishers: list[Publisher], **choice: object) -> SlotPlan:
    """wanted_streams then assign_slots (``choice``: wanted_streams' keyword arguments after ``publishers``)."""
    return assign_slots(previous, wanted_streams(subscriber=subscriber, publishers=publishers, **choice))  # type: ignore[arg-type]


def test_wanted_streams_stage_choice_and_order() -> None:
    w = wanted_streams(subscriber="p0", publishers=PUBS, speaker_order=["p5", "p0", "p7"], dominant_speaker="p5",
                       floor_holder="p3", pinned={"p1", "p3"})
    assert (w.stage_audio, w.stage_video) == ("a3", "v3"), "the floor holder before the dominant speaker"
    assert w.videos[:4] == ("v1", "v5", "v7", "v2"), "pinned, then speakers, then publishing order"
    assert "v0" not in w.videos and "v3" not in w.videos, "never one's own video; the stage is not a thumbnail"
    assert w.audios[:5] == ("a1", "a5", "a7", "a2", "a4"), "pinned, speakers, then everyone else"
    assert "a0" not in w.audios and "a3" not in w.audios
    own = wanted_streams(subscriber="p0", publishers=PUBS, floor_holder="p3", own_pin="p9")
    assert own.stage_video == "v9" and own.audios[0] == "a3", "own pin on the stage; the floor holder still heard"
    spot = wanted_streams(subscriber="p0", publishers=PUBS, floor_holder="p3", own_pin="p9", spotlight="p4")
    assert spot.stage_video == "v4"
    nobody = wanted_streams(subscriber="p0", publishers=PUBS[:1])
    assert nobody == Wanted(None, None, (), ())
    first = wanted_streams(subscriber="p0", publishers=PUBS[:3])
    assert first.stage_video == "v1", "without any speaker the first publisher is on stage"


def test_assignment_keeps_unchanged_slots_and_moves_minimally() -> None:
    plan = assign_slots(SlotPlan.empty(4, 2), Wanted("a0", "v0", ("v1", "v2", "v3", "v4", "v5"), ("a1", "a2")))
    assert plan.videos == ("v1", "v2", "v3", "v4") and plan.audios == ("a1", "a2")
    # v3 takes the stage: v0 (the old stage) takes v3's thumbnail; everybody else stays put.
    nxt = assign_slots(plan, Wanted("a3", "v3", ("v0", "v1", "v2", "v4", "v5"), ("a0", "a1", "a2")))
    assert nxt.videos == ("v1", "v2", "v0", "v4")
    assert nxt.audios == ("a1", "a0"), "a1 stays; a2 dropped for the louder a0"
    assert nxt.changes(plan) == [("stage-audio", "a3"), ("stage-video", "v3"), ("video-2", "v0"), ("audio-1", "a0")]
    # Someone leaves: the freed slot takes the next wanted video; nothing else moves.
    after = assign_slots(nxt, Wanted("a3", "v3", ("v0", "v2", "v4", "v5"), ("a0", "a1")))
    assert after.videos == ("v5", "v2", "v0", "v4")
    assert after.changes(nxt) == [("video-0", "v5")]
    # Fewer wanted than slots: the rest are empty. Same input twice: no change.
    few = assign_slots(after, Wanted(None, None, ("v4",), ()))
    assert few.videos == (None, None, None, "v4") and few.audios == (None, None)
    assert assign_slots(few, Wanted(None, None, ("v4",), ())).changes(few) == []


def test_assignment_bounds_the_streams_whatever_the_session_size() -> None:
    pubs = [Publisher(f"p{i}", audio=f"a{i}", video=f"v{i}") for i in range(50)]
    plan = SlotPlan.empty(8, 2)
    for speaker in range(1, 50):
        plan = plan_for(plan, subscriber="p0", publishers=pubs, speaker_order=[f"p{speaker}", f"p{speaker - 1}"],
                        dominant_speaker=f"p{speaker}")
        assert len(plan.videos) == 8 and len(plan.audios) == 2
        assert plan.stage_video == f"v{speaker}"
        videos = [p for p in (plan.stage_video, *plan.videos) if p]
        audios = [p for p in (plan.stage_audio, *plan.audios) if p]
        assert len(videos) == len(set(videos)) == 9 and len(audios) <= 3 and "v0" not in videos


async def test_slot_set_switches_only_changed_slots_and_orders_events() -> None:
    sources = {f"v{i}": make_source(f"v{i}", ssrc=1000 + 10 * i) for i in range(5)}
    sources |= {f"a{i}": make_source(f"a{i}", "audio", ssrc=5000 + 10 * i, pt=111) for i in range(5)}
    producers: dict[str, Producer] = {k: s.producer for k, s in sources.items()}
    sent: list[bytes] = []
    slots = SlotSet(subscriber_id="me", cname="c", send_rtp=lambda d: sent.append(d) or True,
                    send_rtcp=lambda d: True, videos=3, audios=1)
    assert slots.slot_ids() == ["stage-audio", "stage-video", "video-0", "video-1", "video-2", "audio-0"]
    assert slots.video_streams() == 4 and slots.audio_streams() == 2
    assert slots.slots["stage-audio"].stream_id == slots.slots["stage-video"].stream_id == "stage"
    assert len(slots.by_ssrc) == 12
    from slot_helpers import audio_params, video_params

    for i, slot in enumerate(slots.slots.values()):
        slot.configure(video_params(100, 101, str(i)) if slot.kind == "video" else audio_params(111, str(i)))
    events: list[SlotSwitch] = []
    slots.on("switch", events.append)
    switched = slots.update(Wanted("a0", "v0", ("v1", "v2", "v3", "v4"), ("a1", "a2")), producers)
    assert switched == slots.slot_ids()
    for name, src in sources.items():
        src.frame(key=True) if name.startswith("v") else src.audio()
    assert [e.sequence for e in events] == list(range(1, 7))
    assert {e.slot_id: e.producer_id for e in events} == {
        "stage-audio": "a0", "stage-video": "v0", "video-0": "v1", "video-1": "v2", "video-2": "v3", "audio-0": "a1",
    }
    assert len({RtpPacketView.parse(d).ssrc for d in sent}) == 6
    events.clear()
    # v2 takes the stage: only the stage and v2's thumbnail change.
    switched = slots.update(Wanted("a2", "v2", ("v0", "v1", "v3"), ("a0",)), producers)
    assert switched == ["stage-audio", "stage-video", "video-1", "audio-0"]
    assert slots.slots["video-1"].pending is producers["v0"]
    assert slots.slots["video-0"].source is producers["v1"] and slots.slots["video-0"].pending is None
    # A leaving producer frees its slot for the next wanted one.
    sources["v3"].producer.close()
    switched = slots.update(Wanted("a2", "v2", ("v0", "v1", "v3", "v4"), ("a0",)), producers)
    assert switched == ["video-2"] and slots.slots["video-2"].pending is producers["v4"]
    slots.close()
    assert all(not p.sinks for p in producers.values())
