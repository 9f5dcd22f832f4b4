"""End to end through the lab: a bot in a ``poor`` site (1 Mbit/s, 300 ms RTT, 5 % loss each way) joins
a cabinet session with two loopback bots and receives their audio and video through the real server.

The server listens on 198.18.0.1 (the lab's server address, root namespace) and binds ICE to
127.0.0.1 (the loopback bots) and 198.18.0.1 (the site). The site bot is a real subprocess run with
``ip netns exec`` and a join token minted for it.
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SECONDS = 20.0


async def test_a_bot_in_a_poor_site_receives_audio_and_video_with_the_profiles_loss_and_delay(
        lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("sitebot", "poor", seed=21)
    config = make_config(tmp_path / "data", **{"media.ice_bind_addresses": ["127.0.0.1", lab.server_address]})
    server = await asyncio.to_thread(LiveServer(config, host=lab.server_address).start)
    media = await asyncio.to_thread(load_media, MediaParams(), tmp_path / "media")
    loopback: list[Bot] = []
    try:
        # Two loopback bots publish: the chair audio and video, the secretariat audio only (the site's
        # 1 Mbit/s downlink carries ~0.6 Mbit/s of media, so the loss is the profile's, not the queue's).
        # Only the chair speaks, so it holds the site's stage for the whole run: a voice without a camera
        # taking the stage would move the chair's video to a thumbnail slot halfway (slots are counted
        # per slot, not per participant; tests/linklab/test_slot_switch_loss.py is about switches).
        for name, video in (("chair", True), ("secretariat", False)):
            bot = Bot(BotOptions(url=server.url, token=await server.join_token(name), name=name, subscribe=False,
                                 video=video, speaking=name == "chair", bind_addresses=["127.0.0.1"]), media)
            loopback.append(bot)
            await bot.start()
        token = await server.join_token("governor")
        proc = await asyncio.create_subprocess_exec(
            *site.exec_args([sys.executable, "-m", "bots", "--url", server.url, "--token", token, "--subscribe",
                             "--lean", "--json", "--name", "governor", "--seconds", str(SECONDS),
                             "--bind", site.address]),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), SECONDS + 60)
        counters = await site.counters()
    finally:
        for bot in loopback:
            await bot.stop()
        await asyncio.to_thread(server.stop)
    assert proc.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    streams = {}
    ids = {bot.options.name: bot.client.participant_id for bot in loopback}
    for stream in report["streams"]:  # one per slot (stage, thumbnails, extra voices): those that carried media
        if stream["packets"] and stream["participant_id"] is not None:
            streams[(stream["participant_id"], stream["kind"])] = stream
    down, up = counters["downlink"], counters["uplink"]
    link_loss = 100 * down["dropped_loss"] / max(1, down["in_packets"])
    print(f"\nsite relay: downlink {down['in_packets']} in, {down['dropped_loss']} lost ({link_loss:.1f} %), "
          f"{down['dropped_queue']} queue drops; uplink {up['in_packets']} in, {up['dropped_loss']} lost")
    for (who, kind), s in sorted(streams.items()):
        print(f"  {kind:5} from {who}: {s['packets']} packets, {s['frames_received']} frames, loss {s['loss_percent']:.2f} % "
              f"({s['lost_packets']} lost, {s['nacks_sent']} NACKs), latency p50/p95 {s['latency_ms_p50']}/"
              f"{s['latency_ms_p95']} ms, freezes {s['freezes']}")
    video = streams[(ids["chair"], "video")]
    audio = [streams[(ids[name], "audio")] for name in ("chair", "secretariat")]
    one_way = site.profile.downlink.delay_ms
    # Lean mode decodes a sample; a sampled frame whose lost packet never came back fails to decode.
    assert video["frames_received"] >= 100 and video["decode_errors"] <= 3
    assert all(a["packets"] >= 400 for a in audio)
    # The relay dropped ~5 % of what it carried to the site, as the profile says.
    assert 3.5 <= link_loss <= 6.5
    # A keyframe is a burst of ~30 kB: at 1 Mbit/s it can overflow the 250 ms queue by a packet or two.
    assert down["dropped_queue"] <= 0.03 * down["in_packets"]
    # Audio is not retransmitted: the bot sees the link's loss. Video gaps are NACKed and mostly filled
    # by the server's RTX (a NACK and its retransmission cross the lossy link once more each).
    for a in audio:
        assert 2.0 <= a["loss_percent"] <= 9.0
    assert video["loss_percent"] <= 9.0 and video["nacks_sent"] > 0
    # Latency: at least the profile's one-way delay, and not wildly more (queueing, jitter buffer-free).
    for s in (video, *audio):
        assert s["latency_ms_p50"] is not None and one_way - 10 <= s["latency_ms_p50"] <= one_way + 250
