"""Who each slot carries, steered over signaling: one's own pin, the chair's spotlight, last-N.

Real server, real aiortc publishers and one subscriber on loopback; the subscriber's connection is
negotiated once and every change arrives as ``slot`` events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from harness import LiveServer, make_config
from meetings.policy import Caller
from sigclient import SigClient

CLI = Caller.cli()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_config(tmp_path_factory.mktemp("slots"), **{"media.ice_bind_addresses": ["127.0.0.1"]}))
    yield live.start()
    live.stop()


@pytest.fixture
async def people(server: LiveServer) -> AsyncIterator[dict[str, SigClient]]:
    made: dict[str, SigClient] = {}
    yield made
    for c in made.values():
        await c.close()


async def connect(server: LiveServer, made: dict[str, SigClient], username: str) -> tuple[SigClient, dict[str, Any]]:
    client = SigClient(server.url)
    made[username] = client
    await client.connect(await server.join_token(username))
    joined = await client.call("join")
    assert joined["ok"], joined
    return client, joined


async def on_stage(client: SigClient, participant_id: str | None, after: int = 0) -> dict[str, Any]:
    """The ``slot`` event that put ``participant_id`` on the stage's video (sequence > ``after``)."""
    return await client.wait_for("slot", lambda e: e["slot_id"] == "stage-video" and e["sequence"] > after
                                 and e["participant_id"] == participant_id, timeout=20)


async def audit_actions(server: LiveServer) -> list[tuple[str, dict[str, Any]]]:
    services = server.services()
    try:
        return [(e.action, json.loads(e.details) if isinstance(e.details, str) else e.details)
                for e in await services.audit.recent(CLI, limit=100)]
    finally:
        await services.db.dispose()


async def test_pin_spotlight_and_last_n_move_producers_between_slots(server: LiveServer,
                                                                     people: dict[str, SigClient]) -> None:
    observer, o = await connect(server, people, "observer")
    chair, c = await connect(server, people, "chair")
    governor, g = await connect(server, people, "governor")
    secretariat, s = await connect(server, people, "secretariat")
    subscribed = await observer.subscribe(videos=2, audios=1)
    sdp = observer.recv_pc.localDescription.sdp
    assert subscribed["ok"] and len(subscribed["slots"]) == 5
    assert (await chair.publish(AudioStreamTrack(), VideoStreamTrack()))["ok"]
    first = await on_stage(observer, c["participant_id"])  # the first publisher, nobody speaks yet
    assert (await governor.publish(AudioStreamTrack(), VideoStreamTrack()))["ok"]
    thumb = await observer.wait_for("slot", lambda e: e["slot_id"] == "video-0"
                                    and e["participant_id"] == g["participant_id"], timeout=20)
    assert thumb["producer_id"] and thumb["sequence"] > first["sequence"]

    # The observer pins the governor to its own stage: the chair moves to a thumbnail.
    assert (await observer.call("pin", {"participant_id": g["participant_id"]}))["ok"]
    pinned = await on_stage(observer, g["participant_id"], after=thumb["sequence"])
    await observer.wait_for("slot", lambda e: e["slot_id"].startswith("video-") and e["sequence"] > thumb["sequence"]
                            and e["participant_id"] == c["participant_id"], timeout=20)
    refused = await observer.call("pin", {"participant_id": "p999-nobody"})
    assert refused["error"]["code"] == "not_found"

    # Only a moderator spotlights; the spotlight beats one's own pin, for everyone.
    assert (await governor.call("moderate", {"action": "spotlight", "participant_id": c["participant_id"]})
            )["error"]["code"] == "forbidden"
    assert (await secretariat.call("moderate", {"action": "spotlight", "participant_id": c["participant_id"]}))["ok"]
    assert (await observer.wait_for("spotlight"))["participant_id"] == c["participant_id"]
    spot = await on_stage(observer, c["participant_id"], after=pinned["sequence"])
    assert (await secretariat.call("moderate", {"action": "spotlight_off"}))["ok"]
    back = await on_stage(observer, g["participant_id"], after=spot["sequence"])  # the pin holds again
    await observer.wait_for("spotlight", lambda e: e["participant_id"] is None)
    actions = await audit_actions(server)
    assert ("stage.spotlight", {"participant_id": c["participant_id"], "person_id": chair_person(c)}) in actions
    assert any(a == "stage.spotlight_off" for a, _ in actions)

    # Audio only: no video slot carries anything; back to the default: the videos return.
    assert (await observer.call("set_last_n", {"n": 0}))["ok"]
    empty = await observer.wait_for("slot", lambda e: e["slot_id"] == "stage-video" and e["producer_id"] is None
                                    and e["sequence"] > back["sequence"], timeout=20)
    await observer.wait_for("slot", lambda e: e["slot_id"] == "video-0" and e["producer_id"] is None
                            and e["sequence"] > back["sequence"], timeout=20)
    assert observer.carried("audio")["stage-audio"] == g["participant_id"]  # the voice stays
    assert (await observer.call("set_last_n", {"n": 9}))["ok"]
    await on_stage(observer, g["participant_id"], after=empty["sequence"])

    # A late subscriber is told at its answer which voices its slots carry (announced before it
    # could listen), then which face each video slot shows from its first frame.
    late = await secretariat.subscribe(videos=1, audios=1)
    assert late["ok"]
    voice = await secretariat.wait_for("slot", lambda e: e["slot_id"] == "stage-audio", timeout=20)
    assert voice["participant_id"] in (c["participant_id"], g["participant_id"]) and voice["rtp_timestamp"] == -1
    face = await secretariat.wait_for("slot", lambda e: e["slot_id"] == "stage-video", timeout=20)
    assert face["participant_id"] == voice["participant_id"] and face["rtp_timestamp"] >= 0

    # A camera turned off leaves its slot; the publisher who leaves empties the stage it held.
    assert (await chair.call("mute", {"kind": "video", "muted": True}))["ok"]
    await observer.wait_for("slot", lambda e: e["slot_id"].startswith("video-") and e["producer_id"] is None
                            and e["sequence"] > empty["sequence"], timeout=20)
    assert (await governor.call("leave"))["ok"]
    await observer.wait_for("slot", lambda e: e["slot_id"] == "stage-video" and e["sequence"] > empty["sequence"]
                            and e["participant_id"] != g["participant_id"], timeout=20)
    # Never renegotiated.
    assert observer.events["offer"] == [] and observer.recv_pc.localDescription.sdp == sdp


def chair_person(joined: dict[str, Any]) -> int:
    return int(joined["me"]["person_id"])
