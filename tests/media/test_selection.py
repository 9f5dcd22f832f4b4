"""Who each subscriber receives: the dominant speaker (with hysteresis), and how the Router fills a
subscriber's slots (Router.wanted / update_slots): the stage follows the spotlight, else one's own
pin, else the floor holder, else the dominant speaker; last-N counts the stage's video and the
thumbnails (0: audio only); a camera that is off and a muted voice take no slot; nobody receives
themselves; a participant who leaves is forgotten (pins, speaker order). No network: producers fed
by hand, slot sets without a peer connection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import pytest
from slot_helpers import audio_params, video_params

from media import DominantSpeakerDetector, MediaConfig, Router, SlotSet
from media.producer import Producer
from media.slot_assignment import Wanted

LOUD, QUIET, SILENT = 20, 60, 127


def feed(det: DominantSpeakerDetector, levels: dict[str, int], start_ms: int, duration_ms: int) -> list[str]:
    """20 ms packets for each speaker, ticking every 20 ms; returns the changes seen."""
    changes = []
    for t in range(start_ms, start_ms + duration_ms, 20):
        for name, level in levels.items():
            det.add_level(name, level, t)
        changed = det.tick(t)
        if changed is not None:
            changes.append(changed)
    return changes


def test_first_speaker_takes_the_stage() -> None:
    det = DominantSpeakerDetector(switch_ms=1000)
    assert feed(det, {"a": LOUD, "b": SILENT}, 0, 1000) == ["a"]
    assert det.dominant == "a"


def test_cough_does_not_steal_the_stage() -> None:
    det = DominantSpeakerDetector(switch_ms=1000)
    feed(det, {"a": LOUD, "b": SILENT}, 0, 2000)
    # b coughs for 300 ms, very loud, while a keeps speaking
    assert feed(det, {"a": LOUD, "b": 5}, 2000, 300) == []
    assert feed(det, {"a": LOUD, "b": SILENT}, 2300, 2000) == []
    # ...or while a pauses for breath
    assert feed(det, {"a": SILENT, "b": 5}, 4300, 300) == []
    assert feed(det, {"a": LOUD, "b": SILENT}, 4600, 1000) == []
    assert det.dominant == "a"


def test_sustained_new_speaker_switches_within_the_window() -> None:
    det = DominantSpeakerDetector(switch_ms=1000)
    feed(det, {"a": LOUD, "b": SILENT}, 0, 2000)
    changes = []
    for t in range(2000, 4000, 20):
        changes += feed(det, {"a": SILENT, "b": LOUD}, t, 20)
        if changes:
            switch_after = t - 2000
            break
    assert changes == ["b"]
    assert 500 <= switch_after <= 1100


def test_louder_speaker_does_not_switch_while_current_keeps_talking_equally() -> None:
    det = DominantSpeakerDetector(switch_ms=1000)
    feed(det, {"a": LOUD, "b": SILENT}, 0, 1500)
    assert feed(det, {"a": LOUD, "b": LOUD}, 1500, 3000) == []
    assert det.dominant == "a"


def test_removed_dominant_speaker() -> None:
    det = DominantSpeakerDetector(switch_ms=1000)
    feed(det, {"a": LOUD}, 0, 1500)
    det.remove_speaker("a")
    assert det.dominant is None
    assert feed(det, {"b": LOUD}, 1500, 1500) == ["b"]


def test_a_late_tick_does_not_hide_a_speaker() -> None:
    """On a busy server the 100 ms tick may run every 200-250 ms, closing two buckets at once: the
    speech of the whole span still counts (it used to land in one bucket and leave the other empty,
    so no one ever reached the active share and the stage stayed empty)."""
    for tick_every in (100, 200, 250, 400):
        det = DominantSpeakerDetector(switch_ms=600)
        changes = []
        for t in range(0, 3000, 20):
            det.add_level("a", LOUD, t)
            det.add_level("b", SILENT, t)
            if t % tick_every == 0 and (changed := det.tick(t)) is not None:
                changes.append((changed, t))
        assert [c for c, _ in changes] == ["a"], tick_every
        assert changes[0][1] <= 600 + tick_every, (tick_every, changes)


def test_bursty_arrival_counts_media_time_not_arrivals() -> None:
    """A sender or network that stalls and catches up delivers 200 ms of packets at once: the speaker
    spoke all along; the buckets that got no packet are not silence."""
    det = DominantSpeakerDetector(switch_ms=600)
    feed(det, {"a": LOUD, "b": SILENT}, 0, 1000)
    changes = []
    for t in range(1000, 4000, 20):
        det.add_level("a", SILENT, t)
        if t % 200 == 0:
            for _ in range(10):  # b's last 200 ms of speech, all at once
                det.add_level("b", LOUD, t)
        if t % 100 == 0 and (changed := det.tick(t)) is not None:
            changes.append((changed, t))
    assert [c for c, _ in changes] == ["b"]
    assert changes[0][1] <= 1000 + 1000
    # ...and a 200 ms cough that arrives in one burst is still only 200 ms of speech.
    for t in range(4000, 6000, 20):
        det.add_level("a", SILENT, t)
        det.add_level("b", LOUD, t)
        if t == 4400:
            for _ in range(10):
                det.add_level("a", 5, t)
        if t % 100 == 0:
            assert det.tick(t) is None


def test_media_time_of_a_packet_is_its_duration() -> None:
    """40 ms packets count twice as much speech as 20 ms ones: half as many of them is the same talk."""
    det = DominantSpeakerDetector(switch_ms=1000)
    for t in range(0, 1000, 40):
        det.add_level("a", LOUD, t, 40.0)
        det.add_level("b", SILENT, t, 40.0)
        det.tick(t)
    assert det.dominant == "a"


def test_detector_validates() -> None:
    with pytest.raises(ValueError):
        DominantSpeakerDetector(switch_ms=50, bucket_ms=100)


# -- the router fills the slots -----------------------------------------------------------------


@dataclass
class Member:
    audio: Producer | None
    video: Producer | None


def add_publisher(router: Router, name: str, *, audio: bool = True, video: bool = True) -> Member:
    made: dict[str, Producer] = {}
    for kind, wanted in (("audio", audio), ("video", video)):
        if not wanted:
            continue
        params = audio_params(111, "0") if kind == "audio" else video_params(96, 97, "1")
        producer = Producer(producer_id=f"{name}-{kind}", participant_id=name, stream_id=f"s-{name}",
                            parameters=params, ssrc=None, rtx_ssrc=None, rtcp_ssrc=1,
                            send_rtcp=lambda d: True, rtx_history_ms=1000, pli_throttle_ms=500)
        router.add_producer(producer)
        made[kind] = producer
    return Member(made.get("audio"), made.get("video"))


def add_subscriber(router: Router, name: str, *, videos: int = 2, audios: int = 1) -> SlotSet:
    """A subscriber's slots, as WebRtcTransport.create_slots registers them (no peer connection)."""
    slot_set = SlotSet(subscriber_id=name, cname="c", send_rtp=lambda d: True, send_rtcp=lambda d: True,
                       videos=videos, audios=audios)
    router.add_slot_set(slot_set)
    return slot_set


def plan(slot_set: SlotSet) -> dict[str, str | None]:
    """Producer id per slot id, empty slots left out."""
    return {slot_id: p for slot_id, p in slot_set.plan.items() if p is not None}


def speak(router: Router, speakers: Iterable[str], start_ms: int, duration_ms: int = 2000) -> None:
    """20 ms audio packets from every audio producer (loud for ``speakers``), ticking the detector."""
    speaking = set(speakers)
    for t in range(start_ms, start_ms + duration_ms, 20):
        for producer in list(router.producers.values()):
            if producer.kind == "audio" and producer.forwarding:
                router.on_audio_level(producer, LOUD if producer.participant_id in speaking else SILENT, t)
        router.tick_speaker(t)


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = Router(MediaConfig(ice_bind_addresses=["127.0.0.1"]), router_id="selection")
    yield r
    await r.close()


async def test_stage_follows_spotlight_then_own_pin_then_floor_holder_then_dominant_speaker(router: Router) -> None:
    for name in "abcd":
        add_publisher(router, name)
    me = add_subscriber(router, "me", videos=2, audios=1)
    other = add_subscriber(router, "other", videos=0, audios=0)
    # Nobody spoke: the first publisher on the stage, the next ones in the thumbnails and the extra
    # voice (everyone is heard before the session opens, not only those who spoke).
    assert plan(me) == {"stage-audio": "a-audio", "stage-video": "a-video", "video-0": "b-video", "video-1": "c-video",
                        "audio-0": "b-audio"}
    speak(router, ["c"], 0)
    assert router.dominant_speaker == "c"
    assert plan(me)["stage-video"] == "c-video" and plan(me)["video-1"] == "a-video", "a takes c's freed thumbnail"
    assert plan(me)["audio-0"] == "a-audio", "nobody else spoke: the first publisher off the stage is heard"
    router.set_stage(floor_holder="b", spotlight=None)
    assert (plan(me)["stage-audio"], plan(me)["stage-video"]) == ("b-audio", "b-video")
    assert plan(me)["audio-0"] == "c-audio", "the dominant speaker is still heard"
    router.set_own_pin("me", "d")
    assert plan(me)["stage-video"] == "d-video" and plan(me)["audio-0"] == "b-audio", "the floor holder is heard"
    assert plan(other)["stage-video"] == "b-video", "one's own pin is one's own"
    router.set_stage(floor_holder="b", spotlight="a")
    assert plan(me)["stage-video"] == plan(other)["stage-video"] == "a-video", "the spotlight beats everything"
    router.set_stage(floor_holder="b", spotlight=None)
    assert plan(me)["stage-video"] == "d-video"
    router.set_own_pin("me", None)
    assert plan(me)["stage-video"] == "b-video"
    router.set_stage(floor_holder=None, spotlight=None)
    assert plan(me)["stage-video"] == plan(other)["stage-video"] == "c-video"
    # Pinned participants (chair, floor holder) come first in the thumbnails and the voices.
    router.set_pinned({"d"})
    assert plan(me)["video-0"] == "d-video" or plan(me)["video-1"] == "d-video"
    assert plan(me)["audio-0"] == "d-audio"
    # A pin or spotlight on someone who does not publish falls through to the next rule.
    router.set_stage(floor_holder=None, spotlight="nobody")
    router.set_own_pin("me", "nobody")
    assert plan(me)["stage-video"] == "c-video"


async def test_last_n_counts_the_stage_and_the_thumbnails_zero_is_audio_only(router: Router) -> None:
    for name in "abcdef":
        add_publisher(router, name)
    me = add_subscriber(router, "me", videos=8, audios=2)
    videos = lambda: [p for sid, p in plan(me).items() if "video" in sid]  # noqa: E731

    assert len(videos()) == 6, "config.last_n (9) is more than there are cameras"
    router.set_last_n("me", 3)
    assert plan(me)["stage-video"] == "a-video" and videos() == ["a-video", "b-video", "c-video"]
    assert router.wanted("me").videos == ("b-video", "c-video")
    router.set_last_n("me", 1)
    assert videos() == ["a-video"]
    router.set_last_n("me", 0)
    assert videos() == [] and plan(me) == {"stage-audio": "a-audio", "audio-0": "b-audio", "audio-1": "c-audio"}, \
        "audio only: the voices stay"
    assert router.wanted("me") == Wanted("a-audio", None, (), ("b-audio", "c-audio", "d-audio", "e-audio", "f-audio"))
    router.set_last_n("me", None)
    assert len(videos()) == 6
    for bad in (-1, 65):
        with pytest.raises(ValueError):
            router.set_last_n("me", bad)
    # Whatever the session size, at most 1 + V videos.
    for name in "ghijklmnop":
        add_publisher(router, name)
    assert len(videos()) == 9 and len(router.wanted("me").videos) == 8
    small = add_subscriber(router, "small", videos=2, audios=0)
    assert len([sid for sid in plan(small) if "video" in sid]) == 3


async def test_a_camera_turned_off_takes_no_slot(router: Router) -> None:
    members = {name: add_publisher(router, name) for name in "abcd"}
    me = add_subscriber(router, "me", videos=2, audios=0)
    assert plan(me)["video-0"] == "b-video" and plan(me)["video-1"] == "c-video"
    members["b"].video.pause()  # type: ignore[union-attr]
    assert plan(me)["video-0"] == "d-video" and "b-video" not in plan(me).values()
    assert me.slots["video-0"].pending is members["d"].video, "the freed slot switches to the next camera"
    members["a"].video.pause()  # type: ignore[union-attr]
    # The stage participant stays on the stage by voice; nobody's camera replaces theirs.
    assert plan(me)["stage-audio"] == "a-audio" and "stage-video" not in plan(me)
    members["a"].video.resume()  # type: ignore[union-attr]
    members["b"].video.resume()  # type: ignore[union-attr]
    assert plan(me)["stage-video"] == "a-video"
    assert plan(me)["video-0"] == "b-video" and plan(me)["video-1"] == "c-video", "c stayed where it was"
    # An audio-only publisher takes no video slot either.
    add_publisher(router, "e", video=False)
    assert not any(p.startswith("e-") for sid, p in plan(me).items() if "video" in sid)


async def test_muted_voices_take_no_extra_audio_slot(router: Router) -> None:
    for name in "abcd":
        add_publisher(router, name)
    me = add_subscriber(router, "me", videos=0, audios=2)
    speak(router, ["b"], 0)
    speak(router, ["c"], 2000)
    assert router.speaker_order[:2] == ["c", "b"]
    # Minimal moves: a (heard since nobody had spoken) keeps audio-0, b takes the slot c left.
    assert plan(me) == {"stage-audio": "c-audio", "stage-video": "c-video", "audio-0": "a-audio", "audio-1": "b-audio"}
    router.set_pinned({"d"})
    assert plan(me)["audio-1"] == "b-audio" and plan(me)["audio-0"] == "d-audio", "b kept its slot"
    with router.batch():  # floor control mutes every voice but the floor holder's, in one refill
        for name in "abcd":
            router.set_participant_audio_muted(name, True)
    assert "audio-0" not in plan(me) and "audio-1" not in plan(me)
    assert plan(me)["stage-audio"] == "c-audio", "the stage keeps its voice slot (silent while muted)"
    router.set_participant_audio_muted("d", False)
    assert list(plan(me).values()).count("d-audio") == 1


async def test_a_subscriber_never_receives_itself(router: Router) -> None:
    for name in "abc":
        add_publisher(router, name)
    a = add_subscriber(router, "a", videos=4, audios=2)
    speak(router, ["a"], 0)
    router.set_pinned({"a"})
    router.set_stage(floor_holder="a", spotlight="a")
    router.set_own_pin("a", "a")
    assert plan(a) and not any(p.startswith("a-") for p in plan(a).values())
    assert plan(a)["stage-video"] == "b-video"
    b = add_subscriber(router, "b", videos=4, audios=2)
    assert plan(b)["stage-video"] == "a-video" and not any(p.startswith("b-") for p in plan(b).values())


async def test_a_participant_who_leaves_is_forgotten(router: Router) -> None:
    members = {name: add_publisher(router, name) for name in "abc"}
    me = add_subscriber(router, "me", videos=1, audios=1)
    c_slots = add_subscriber(router, "c", videos=1, audios=0)
    speak(router, ["b"], 0)
    router.set_own_pin("me", "c")
    router.set_own_pin("c", "a")
    router.set_last_n("c", 1)
    assert plan(me)["stage-video"] == "c-video" and router.speaker_order[0] == "b"
    # c leaves: its producers close, its slots close, signaling forgets its choices and the pins on it.
    for producer in (members["c"].audio, members["c"].video):
        producer.close()  # type: ignore[union-attr]
    c_slots.close()
    router.forget_subscriber("c")
    assert plan(me)["stage-video"] == "b-video", "the stage falls back to the speaker"
    assert router.slot_set("c") is None
    # c comes back: the old pin on c is not resurrected, nor c's own pin and last-N.
    add_publisher(router, "c")
    c_again = add_subscriber(router, "c", videos=1, audios=0)
    assert plan(me)["stage-video"] == "b-video"
    assert plan(c_again)["stage-video"] == "b-video" and "video-0" in plan(c_again)
    # The speaker order forgets whoever leaves for good (it stays bounded).
    for producer in (members["b"].audio, members["b"].video):
        producer.close()  # type: ignore[union-attr]
    assert "b" not in router.speaker_order
    assert plan(me)["stage-video"] in ("a-video", "c-video")


async def test_changes_made_together_refill_the_slots_once(router: Router) -> None:
    for name in "abcd":
        add_publisher(router, name)
    me = add_subscriber(router, "me", videos=2, audios=2)
    updates: list[Wanted] = []
    original = me.update
    me.update = lambda wanted, producers: updates.append(wanted) or original(wanted, producers)  # type: ignore[method-assign]
    with router.batch():
        router.set_stage(floor_holder="d", spotlight=None)
        router.set_pinned({"b", "c"})
        with router.batch():
            router.set_own_pin("me", "c")
        assert updates == [] and plan(me)["stage-video"] == "a-video"
    assert len(updates) == 1 and plan(me)["stage-video"] == "c-video"
    router.set_stage(floor_holder="d", spotlight=None)  # no change: no refill
    assert len(updates) == 1
