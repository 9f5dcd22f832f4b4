"""No single signaling message may hold the server's event loop for more than 50 ms (issue 9).

Every client event is sent to a live server on loopback at the largest size the server accepts (the
publish offer and the subscription answer Chromium-shaped, four media sections, grown to the line and
byte limits with each kind of line an attacker could choose), and just over its limits (refused). For
each message the probe (tests/loop_probe.py) records the longest single callback of the server's loop
while the message and what it set off were handled; each case runs three times and the minimum of the
maxima is kept. Asserted on the CPU time of the server's thread without garbage collection (robust on a
busy machine; a full collection of this process's heap takes ~100 ms whatever message happens to trigger
it, reported as gc_ms, not a property of the message); the elapsed time, also without garbage collection,
is asserted with a wide margin (preemption on a shared machine), enough to catch a message that blocks
without using CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness import LiveServer, make_config
from loop_budget_cases import EVENTS, Scenario
from signaling.protocol import CLIENT_EVENTS

BUDGET_MS = float(os.environ.get("CABINET_LOOP_BUDGET_MS", "50"))
#: Elapsed time also counts preemption by other processes and the test client's thread (same process,
#: one GIL): without garbage collections it must stay within this.
WALL_LIMIT_MS = 4 * BUDGET_MS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    config = make_config(tmp_path_factory.mktemp("loop-budget"), **{
        "media.ice_bind_addresses": ["127.0.0.1"],
        # Sizes are under test, not rates: no refusal for sending too fast.
        "signaling.rate_per_second": 1000.0, "signaling.rate_burst": 1000})
    live = LiveServer(config).start()
    yield live
    live.stop()


@pytest.mark.timeout(240)
async def test_no_message_holds_the_loop_longer_than_the_budget(server: LiveServer) -> None:
    lines: list[str] = []
    cases = await Scenario(server, runs=3, log=lines.append).run()
    print("\n".join(lines))
    assert {case.event for case in cases} == set(CLIENT_EVENTS) == set(EVENTS)
    assert any(c.event == "publish" and not c.refused for c in cases)
    assert any(c.event == "answer" and not c.refused for c in cases)
    over = [f"{c.name}: {c.measured.work_ms:.1f} ms CPU, {c.measured.stall_ms:.1f} ms elapsed "
            f"(longest callback: {c.measured.worst.what})"
            for c in cases if c.measured.work_ms > BUDGET_MS or c.measured.stall_ms > WALL_LIMIT_MS]
    assert not over, "messages over the loop budget of %g ms:\n" % BUDGET_MS + "\n".join(over)
