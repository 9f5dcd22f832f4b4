"""What crosses a node's pipe (provincial_nodes/pipe_link.py): every wanted camera, and of the wanted
voices the floor holder's and the most recent speakers', at most four, whatever the number talking."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from media import Router
from media.pipe import PipedTrack, PipeReceiver
from media.rewriter import ExtensionIds
from meetings.models import MeetingState
from provincial_nodes.pipe_frames import PipeRefused, session_of
from provincial_nodes.pipe_link import MAX_PIPED_VOICES, MeetingShare, PipeLink


def track(n: int, kind: str) -> PipedTrack:
    audio = kind == "audio"
    return PipedTrack(f"producer-{kind}-{n}", f"p{n}-aa", f"s{n}", kind, "0" if audio else "1",
                      "audio/opus" if audio else "video/VP8", 48000 if audio else 90000, 2 if audio else None,
                      111 if audio else 96, 1000 + n * 2 + audio, ExtensionIds(1, 2, 3))


class Gate:
    async def room(self, meeting_id: int) -> None:
        return None

    async def people(self, room: Any, entries: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        return {e["participant_id"] for e in entries}, set()

    async def release(self, room: Any, status: str) -> None:
        return None

    async def event(self, room: Any, participant_id: str, event: str, data: dict[str, Any]) -> None:
        return None

    async def follow(self, room: Any, session: Any) -> None:
        return None

    def alive(self, room: Any) -> None:
        return None

    async def departed(self, meeting_id: int, departures: dict[str, Any]) -> None:
        return None


async def frames(frame: dict[str, Any]) -> None:
    return None


async def test_ten_talking_send_four_voices_the_floor_holder_first_and_every_wanted_camera() -> None:
    router = Router(router_id="centre")
    elsewhere = PipeReceiver(lambda data: None, tag="publishers")  # producers of this router, not of the link
    producers = [elsewhere.add(track(n, kind), into=router.add_producer) for n in range(10) for kind in ("audio", "video")]
    link = PipeLink("centre", Gate(), frames, tag="node1")
    share = MeetingShare(SimpleNamespace(router=router, meeting_id=1))  # type: ignore[arg-type]
    try:
        router.speaker_order = [f"p{n}-aa" for n in (7, 3, 9, 1, 5)]
        router.floor_holder = "p2-aa"
        share.far_wants = frozenset(p.id for p in producers if p.kind == "audio" or p.participant_id in ("p4-aa", "p8-aa"))
        link._retap(share)
        tapped = link.pipe.sender.taps
        voices = sorted(tapped[pid].producer.participant_id for pid in tapped if tapped[pid].producer.kind == "audio")
        cameras = sorted(tapped[pid].producer.participant_id for pid in tapped if tapped[pid].producer.kind == "video")
        assert len(voices) == MAX_PIPED_VOICES == 4
        assert voices == ["p2-aa", "p3-aa", "p7-aa", "p9-aa"], "the floor holder, then the latest speakers"
        assert cameras == ["p4-aa", "p8-aa"], "the wanted cameras, and only those"

        router.speaker_order = ["p5-aa"] + [p for p in router.speaker_order if p != "p5-aa"]  # speaks again
        link._retap(share)
        voices = sorted(tapped[pid].producer.participant_id for pid in tapped if tapped[pid].producer.kind == "audio")
        assert voices == ["p2-aa", "p3-aa", "p5-aa", "p7-aa"]

        share.far_wants = frozenset()
        link._retap(share)
        assert not tapped, "nothing wanted, nothing crosses"
    finally:
        await link.close()
        elsewhere.close()
        await router.close()


async def test_what_came_through_the_pipe_is_never_sent_back_into_it() -> None:
    router = Router(router_id="centre")
    link = PipeLink("centre", Gate(), frames, tag="node1")
    mirror = link.pipe.receiver.add(track(1, "video"), into=router.add_producer)
    share = MeetingShare(SimpleNamespace(router=router, meeting_id=1, participants={}, remote={},  # type: ignore[arg-type]
                                         remote_via=lambda pid: None,
                                         floor=SimpleNamespace(recorder=SimpleNamespace(by_participant={}),
                                                               deferred=True)))
    try:
        share.far_wants = frozenset({mirror.id})
        link._retap(share)
        assert not link.pipe.sender.taps
        assert link.table(share)["tracks"] == []
        assert "session" not in link.table(share), "a room that defers to a host tells nobody its session"
    finally:
        await link.close()
        await router.close()


def test_a_tables_session_state_is_checked() -> None:
    opened = "2026-11-27T08:00:00+00:00"
    assert session_of({}) is None
    host = session_of({"session": {"state": "open", "opened_at": opened, "closed_at": None}})
    assert host is not None and host.state is MeetingState.OPEN and host.opened_at is not None
    assert host.opened_at.isoformat() == opened and host.closed_at is None
    holder = {"participant_id": "p3-aa", "person_id": 3, "full_name": "Keo Sreymom", "office_name": "Siem Reap",
              "office_name_km": "សៀមរាប", "granted_at": 1795800000.5, "limit_seconds": 120}
    with_floor = session_of({"session": {"state": "open", "opened_at": opened, "closed_at": None, "floor": holder}})
    assert with_floor is not None and with_floor.floor == holder
    for bad_floor in ("p3", {**holder, "extra": 1}, {**holder, "person_id": "3"}, {**holder, "full_name": "x" * 201},
                      {**holder, "limit_seconds": True}, {k: v for k, v in holder.items() if k != "granted_at"}):
        with pytest.raises(PipeRefused):
            session_of({"session": {"state": "open", "floor": bad_floor}})
    for bad in ("open", {"state": "adjourned"}, {"state": "open", "opened_at": "yesterday"},
                {"state": "closed", "closed_at": "2026-11-27T08:00:00"}, {"state": None}):
        with pytest.raises(PipeRefused):
            session_of({"session": bad})
