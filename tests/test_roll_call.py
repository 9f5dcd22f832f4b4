"""Roll call over signaling, and signaling refusing session actions to those who may not take them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from harness import LiveServer, make_config
from session_helpers import CLI, new_session, sig_join, with_services
from sigclient import SigClient


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(make_config(tmp_path_factory.mktemp("roll"), **{"media.ice_bind_addresses": ["127.0.0.1"]}))
    yield live.start()
    live.stop()


@pytest.fixture
async def people() -> AsyncIterator[dict[str, SigClient]]:
    made: dict[str, SigClient] = {}
    yield made
    for c in made.values():
        await c.close()


async def test_roll_call(server: LiveServer, people: dict[str, SigClient]) -> None:
    meeting_id = await new_session(server)
    chair, c = await sig_join(server, people, "chair", meeting_id)
    governor, g = await sig_join(server, people, "governor", meeting_id)
    observer, _ = await sig_join(server, people, "observer", meeting_id)
    assert (await chair.call("roll_call", {"action": "start"}))["error"]["code"] == "forbidden"  # not open yet
    assert (await chair.call("session", {"action": "open"}))["ok"]
    assert (await governor.call("roll_call", {"action": "start"}))["error"]["code"] == "forbidden"
    started = await chair.call("roll_call", {"action": "start"})
    assert started["ok"] and started["roll_call"]["open"] and started["roll_call"]["answered"] == []
    assert (await chair.call("roll_call", {"action": "start"}))["error"]["code"] == "conflict"
    seen = await governor.wait_for("roll_call", lambda r: r["roll_call"] and r["roll_call"]["open"])
    assert "sites" not in seen["roll_call"]
    answered = await governor.call("roll_call", {"action": "answer"})
    assert answered["ok"] and g["me"]["office_id"] in answered["roll_call"]["answered"]
    assert (await governor.call("roll_call", {"action": "answer"}))["ok"]  # answering twice changes nothing
    assert (await observer.call("roll_call", {"action": "answer"}))["error"]["code"] == "forbidden"
    board = await chair.wait_for("roll_call", lambda r: r["roll_call"] and g["me"]["office_id"]
                                 in r["roll_call"]["answered"] and r["roll_call"].get("sites"))
    sites = {s["office_id"]: s for s in board["roll_call"]["sites"]}
    assert g["me"]["office_id"] in sites and len(sites) > 10  # who has not answered is listed too
    assert (await chair.call("roll_call", {"action": "close"}))["ok"]
    assert (await governor.wait_for("roll_call", lambda r: r["roll_call"] is None)) is not None
    assert (await governor.call("roll_call", {"action": "answer"}))["error"]["code"] == "wrong_state"
    actions = [e.action for e in await with_services(server, lambda s: s.audit.recent(CLI, limit=100))]
    for action in ("roll_call.start", "roll_call.answer", "roll_call.close"):
        assert action in actions
    assert c["permissions"]["moderate"]


async def test_signaling_refuses_session_actions_and_bad_input(server: LiveServer,
                                                               people: dict[str, SigClient]) -> None:
    meeting_id = await new_session(server)
    chair, _ = await sig_join(server, people, "chair", meeting_id)
    governor, g = await sig_join(server, people, "governor", meeting_id)
    observer, o = await sig_join(server, people, "observer", meeting_id)
    pid = g["participant_id"]
    # The floor needs an open session.
    assert (await chair.call("floor", {"action": "grant", "participant_id": pid}))["error"]["code"] == "forbidden"
    assert (await chair.call("session", {"action": "open"}))["ok"]
    for who in (governor, observer):
        assert (await who.call("floor", {"action": "grant", "participant_id": pid}))["error"]["code"] == "forbidden"
        assert (await who.call("floor", {"action": "revoke"}))["error"]["code"] == "forbidden"
        assert (await who.call("session", {"action": "close"}))["error"]["code"] == "forbidden"
        assert (await who.call("roll_call", {"action": "close"}))["error"]["code"] == "forbidden"
        assert (await who.call("register"))["error"]["code"] == "forbidden"
    bad = [("floor", {"action": "grant", "participant_id": pid, "limit_seconds": 0}),
           ("floor", {"action": "grant", "participant_id": pid, "limit_seconds": "60"}),
           ("floor", {"action": "grant"}),
           ("floor", {"action": "steal"}),
           ("floor", {"action": "grant", "participant_id": o["participant_id"]}),  # observers do not speak
           ("session", {"action": "reopen"}),
           ("roll_call", {}),
           ("excuse", {"office_id": 1, "person_id": 2, "reason": "x"})]
    for event, payload in bad:
        assert (await chair.call(event, payload))["error"]["code"] == "invalid", (event, payload)
    assert (await chair.call("floor", {"action": "grant", "participant_id": "p1-nobody"}))["error"]["code"] \
        == "wrong_state"
    assert (await chair.call("floor", {"action": "revoke"}))["error"]["code"] == "wrong_state"
    assert (await governor.call("floor", {"action": "yield"}))["error"]["code"] == "wrong_state"
    grants = await with_services(server, lambda s: s.floor.grants(CLI, meeting_id))
    assert grants == []  # nothing was changed by a refused or bad request
    granted = await chair.call("floor", {"action": "grant", "participant_id": pid, "limit_seconds": 90})
    assert granted["floor"]["holder"]["limit_seconds"] == 90
    note = await governor.wait_for("floor", lambda f: f["holder"] is not None)
    assert 0 < note["holder"]["remaining_seconds"] <= 90
