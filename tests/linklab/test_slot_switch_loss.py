"""A stage switch in the middle of loss (issue 11): a bot in a ``poor`` site (1 Mbit/s, 300 ms RTT, 5 % loss
each way) watches the stage while the chair moves the spotlight between two loopback publishers.

The site bot decodes its stage (a real subprocess in the lab's namespace); every decoded picture's bar code
is checked against the stamp of its frame and against the participant its slot was named for at that RTP
timestamp. No corrupt or wrongly named frame is shown, the stage keeps decoding across the switches, and
each switch costs the new source one keyframe: the server's request at the switch, with the lost packets
of that keyframe recovered by NACK/RTX rather than by more keyframes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from bots.bot import Bot, BotOptions
from bots.media_files import MediaParams, load_media
from harness import LiveServer, make_config
from linklab import Lab
from provincial_nodes.centre_pipes import CENTRE_PIPES
from signaling.room import Room

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SECONDS = 32.0
SWITCHES = 4


def site_stage_forwarding(rooms: dict[int, Room]) -> bool:
    """Whether the governor (the site) has joined and its stage slot forwards a source."""
    for room in list(rooms.values()):
        for participant in list(room.participants.values()):
            slot_set = room.router.slot_set(participant.id)
            if participant.grant.principal.username == "governor" and slot_set is not None:
                return slot_set.slots["stage-video"].forwarding
    return False


async def test_a_stage_switch_under_loss_shows_no_corrupt_frame_and_costs_one_keyframe(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("switchbot", "poor", seed=11)
    # No site budget: this is about switches under loss at full rate (what a budget does on this link is
    # tests/linklab/test_link_matrix.py's, and today it pauses the stage much of the time there).
    config = make_config(tmp_path / "data", **{"media.ice_bind_addresses": ["127.0.0.1", lab.server_address],
                                               "media.budget_enabled": False})
    server = await asyncio.to_thread(LiveServer(config, host=lab.server_address).start)
    media = await asyncio.to_thread(load_media, MediaParams(), tmp_path / "media")
    publishers: dict[str, Bot] = {}
    try:
        for name in ("chair", "secretariat"):  # video and a silent voice each: the stage follows the spotlight
            bot = Bot(BotOptions(url=server.url, token=await server.join_token(name), name=name, subscribe=False,
                                 speaking=False, bind_addresses=["127.0.0.1"]), media)
            publishers[name] = bot
            await bot.start()
        chair, secretariat = publishers["chair"], publishers["secretariat"]
        token = await server.join_token("governor")
        proc = await asyncio.create_subprocess_exec(
            *site.exec_args([sys.executable, "-m", "bots", "--url", server.url, "--token", token, "--subscribe",
                             "--videos", "0", "--audios", "0", "--decode", "stage", "--json", "--name", "governor",
                             "--seconds", str(SECONDS), "--bind", site.address]),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        run = asyncio.ensure_future(proc.communicate())
        # The site joins over the lossy link and settles on the first publisher. Waited for, not slept on:
        # under .ci/run's load the join took longer than a fixed 6 s once, the first spotlight came before
        # it, and the site saw one switch fewer.
        rooms = server.app[CENTRE_PIPES].rooms.rooms if server.app is not None else {}
        deadline = asyncio.get_running_loop().time() + 30
        while not site_stage_forwarding(rooms):
            assert asyncio.get_running_loop().time() < deadline, "the site's stage never carried the first publisher"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        keyframes = lambda: sum(b.publisher.stats.keyframe_requests for b in publishers.values())  # noqa: E731
        before = keyframes()
        targets = [secretariat, chair] * (SWITCHES // 2)
        for target in targets:
            reply = await chair.client.call("moderate", {"action": "spotlight",
                                                         "participant_id": target.client.participant_id})
            assert reply["ok"], reply
            await asyncio.sleep(5.0)  # each source stays on the stage for a while
        during = keyframes() - before
        out, err = await asyncio.wait_for(run, SECONDS + 60)
        counters = await site.counters()
    finally:
        for bot in publishers.values():
            await bot.stop()
        await asyncio.to_thread(server.stop)
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    stage = next(s for s in report["streams"] if s["slot_id"] == "stage-video")
    down = counters["downlink"]
    print(f"\nsite downlink: {down['in_packets']} in, {down['dropped_loss']} lost "
          f"({100 * down['dropped_loss'] / max(1, down['in_packets']):.1f} %); stage: {stage['switches']} switches, "
          f"{stage['decoded_frames']} decoded, {stage['decode_errors']} decode errors, "
          f"{stage['decoded_identity_checked']} pictures checked, {stage['decoded_identity_mismatches']} misnamed, "
          f"{stage['nacks_sent']} NACKs, loss after RTX {stage['loss_percent']} %, freezes {stage['freezes']} "
          f"({stage['freeze_ms']} ms); keyframes asked of the publishers during {SWITCHES} switches: {during}; "
          f"misnamed on arrival: {stage['identity_mismatches']} {stage['identity_mismatch_examples']}")
    assert report["offers_after_join"] == 0 and report["errors"] == []
    assert stage["switches"] >= SWITCHES + 1  # the first source, then every spotlight
    # No corrupt frame: everything decodes, every decoded picture is the one its stamp says, from the
    # participant the page would name at that frame.
    assert stage["decode_errors"] == 0
    assert stage["decoded_identity_checked"] >= 100 and stage["decoded_identity_mismatches"] == 0
    # Pictures whose bar code is not their frame's stamp, or whose stamp was not found: 0-3 of ~450 on
    # a quiet machine, 62 of 445 in .ci/run beside other tests (aiortc hands decoded pictures over late
    # and the bot's pts-to-stamp mapping misses; tests/bots/test_slots_twelve.py sees the same): a
    # sanity bound only. What the viewer would see is checked above (decoded identity, decode errors).
    assert stage["index_mismatches"] <= 0.25 * stage["decoded_frames"] + 5
    # Frames checked on arrival against the slot map (2 s later): the slot event crosses the same lossy
    # link over TCP and may trail the media; none may be named wrongly once it has arrived.
    assert stage["identity_mismatches"] <= 0.02 * max(1, stage["identity_checked"])
    assert stage["decoded_frames"] >= 0.6 * 15 * (SECONDS - 8)
    # One keyframe per switch: the switch's own request; the keyframe's lost packets come back by
    # NACK/RTX (aiortc's receiver NACKs; its loss after retransmission is well under the link's 5 %).
    assert stage["loss_percent"] < 2.0
    # Measured: 4-6 requests for 4 switches on a quiet machine, 7 in .ci/run (a keyframe whose packets
    # NACK/RTX could not repair in time is asked for again by the receiver, through the server's throttle).
    assert during <= 2 * SWITCHES, during
