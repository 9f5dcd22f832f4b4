"""A provincial node across an emulated WAN (issue 14): the centre here, the node a real process in a
link-lab site, the node's people bots on its LAN. One copy of each stream crosses the WAN whatever the
number of viewers on either side; a 60 s blackhole leaves the node's hall running (and letting people
in), and afterwards the session comes back by itself, the same people present throughout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from linklab_probes import lab_unavailable
from node_site import (AIDES, CENTRE_SPEAKERS, CENTRE_VIEWERS, NodeSite, centre_bot, centre_participant, frames_from,
                       node_in_a_site, stream_of, until, wan_per_source_byte)

from bots.bot import Bot
from harness import Client
from meetings.models import Recording, RecordingGap

SESSION = 1


@pytest.fixture
async def clean_node(tmp_path: Path) -> AsyncIterator[NodeSite]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    async with node_in_a_site(tmp_path) as node_site:
        yield node_site


async def reached(predicate, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``predicate()``; an AssertionError naming ``what`` after ``timeout``."""
    seconds = await until(predicate, timeout)
    if seconds is None:
        raise AssertionError(f"{what}: not within {timeout:.0f} s")
    return seconds


async def started(bots: list[Bot], bot: Bot) -> Bot:
    """``bot``, stopped with the test's other centre bots."""
    bots.append(bot)
    return bot


@pytest.fixture
async def centre_bots() -> AsyncIterator[list[Bot]]:
    made: list[Bot] = []
    yield made
    await asyncio.gather(*(asyncio.wait_for(bot.stop(), 20) for bot in made), return_exceptions=True)


async def test_one_wan_copy_of_each_stream_whatever_the_viewers_on_either_side(
        clean_node: NodeSite, centre_bots: list[Bot]) -> None:
    chair = await started(centre_bots, await centre_bot(clean_node, "chair", publish=True))
    viewers = [clean_node.start_bot(AIDES[0], publish=False, seconds=120)]
    pipes = clean_node.pipes
    await reached(lambda: pipes.links and any(l.pipe.sender.taps for l in pipes.links.values()), 30,
                "the chair's media is asked for by the node")
    await asyncio.sleep(4)  # the viewer's slots settle
    chair_id = chair.client.participant_id
    await wan_per_source_byte(clean_node, chair_id)  # warm-up: the start's keyframes, tables and wants
    ratios = {1: (await wan_per_source_byte(clean_node, chair_id))[0]}
    viewers += [clean_node.start_bot(name, publish=False, seconds=120) for name in AIDES[1:3]]
    await asyncio.sleep(8)
    ratios[3] = (await wan_per_source_byte(clean_node, chair_id))[0]
    viewers += [clean_node.start_bot(name, publish=False, seconds=120) for name in AIDES[3:6]]
    await asyncio.sleep(8)
    ratios[6] = (await wan_per_source_byte(clean_node, chair_id))[0]
    print("WAN bytes centre->node per byte the chair sent, by viewers at the node:",
          {n: round(r, 3) for n, r in ratios.items()})
    assert 0.9 < ratios[1] < 1.3, "one copy and the pipe's overhead"
    for n in (3, 6):
        assert abs(ratios[n] - ratios[1]) / ratios[1] <= 0.05, ratios
    for bot in viewers:
        assert bot.proc.poll() is None, f"{bot.name} is still watching: {bot.log_tail()}"

    # Upward: the governor publishes at the node; one viewer at the centre, then five.
    governor = clean_node.start_bot("governor", publish=True, seconds=120)
    watchers = [await started(centre_bots, await centre_bot(clean_node, "secretariat", publish=False))]
    await reached(lambda: any(s.frames_received > 30 and s.participant_id and s.participant_id.startswith("p")
                            and s.participant_id != chair.client.participant_id
                            for s in watchers[0].report().streams), 40, "the governor reaches the centre")
    await asyncio.sleep(3)
    governor_id = next(p.id for p in clean_node.pipes.rooms.rooms[SESSION].participants.values()
                       if p.via is not None and p.grant.principal.username == "governor")
    up = {1: (await wan_per_source_byte(clean_node, governor_id))[1]}
    for username in CENTRE_VIEWERS:
        watchers.append(await started(centre_bots, await centre_bot(clean_node, username, publish=False)))
    await asyncio.sleep(6)
    up[len(watchers)] = (await wan_per_source_byte(clean_node, governor_id))[1]
    print("WAN bytes node->centre per byte the governor sent, by viewers at the centre:",
          {n: round(r, 3) for n, r in up.items()})
    assert 0.9 < up[1] < 1.3 and abs(up[len(watchers)] - up[1]) / up[1] <= 0.05, up
    assert governor.proc.poll() is None, governor.log_tail()
    print(f"node CPU so far: {clean_node.node_cpu_seconds():.1f} s")


async def test_a_60_s_wan_blackhole_leaves_the_hall_running_and_the_session_comes_back_by_itself(
        tmp_path: Path, centre_bots: list[Bot]) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    async with node_in_a_site(tmp_path) as site:
        chair = await started(centre_bots, await centre_bot(site, "chair", publish=True))
        assert (await chair.client.call("session", {"action": "open"}))["session"]["state"] == "open"
        observer = await started(centre_bots, await centre_bot(site, "observer", publish=False))
        governor = site.start_bot("governor", publish=True, seconds=240)
        await reached(lambda: centre_participant(site, "governor") is not None, 30, "the governor is at the centre")
        there = centre_participant(site, "governor")
        interval = site.pipes.rooms.rooms[SESSION].floor.recorder.by_participant[there.id]
        await reached(lambda: frames_from(observer, there.id) > 30, 30, "the governor's camera reaches the centre")

        # A local viewer watches the governor throughout; its frame rate over 10 s of steady state before the
        # cut and 10 s during it (the budget's start-up of a new viewer left out of both).
        hall = site.start_bot(AIDES[0], publish=False, seconds=200)
        await reached(lambda: (hall.frame_rate(there.id, "video", time.time() - 4, time.time()) or 0) > 5, 40,
                      "the hall's viewer sees the governor")
        await reached(lambda: (hall.frame_rate(chair.client.participant_id, "video", time.time() - 4, time.time())
                               or 0) > 1, 30, "the chair reaches the hall")
        await asyncio.sleep(12)
        rate_before = hall.frame_rate(there.id, "video", time.time() - 10, time.time())

        await site.site.set_outage(True)
        cut_at = asyncio.get_running_loop().time()
        await reached(lambda: there.reconnecting, 40, "the centre notices the cut and keeps the governor, reconnecting")
        during = await site.start_bot(AIDES[1], publish=False, seconds=12).report()  # signs in and joins in the cut
        assert (stream_of(during, there.id, "video") or {}).get("frames_received", 0) > 50, \
            f"a third person joins the hall during the cut and sees the governor: {during['streams']}"
        await asyncio.sleep(2)
        rate_during = hall.frame_rate(there.id, "video", time.time() - 10, time.time())
        print(f"the hall's view of the governor: {rate_before} fps before the cut, {rate_during} during it")
        assert rate_before and rate_during and abs(rate_during - rate_before) / rate_before <= 0.10, \
            (rate_before, rate_during)
        assert governor.proc.poll() is None, governor.log_tail()
        assert hall.proc.poll() is None, hall.log_tail()

        await asyncio.sleep(max(0.0, 60 - (asyncio.get_running_loop().time() - cut_at)))
        old = next(iter(site.pipes.links.values()), None)
        await site.site.set_outage(False)
        frames = frames_from(observer, there.id)
        up = await reached(lambda: frames_from(observer, there.id) > frames + 15, 30,
                         "the governor's camera reaches the centre again")

        def node_receives() -> bool:
            link = next(iter(site.pipes.links.values()), None)
            return link is not None and link is not old and link.pipe.sender.stats.reports_received > 0

        down = await reached(node_receives, 30, "the chair's media reaches the node again")
        print(f"after a 60 s blackhole: node->centre media back in {up:.1f} s, centre->node in {down:.1f} s")
        assert max(up, down) < 10
        assert centre_participant(site, "governor") is there and not there.reconnecting, "the same stay"
        assert site.pipes.rooms.rooms[SESSION].floor.recorder.by_participant[there.id] is interval
        assert interval.left_at is None, "one attendance interval throughout the cut"

        # The session closes: the node seals its copy of the hall and uploads it; the centre's archive has no
        # gap for the node's tracks once it is in.
        await asyncio.sleep(3)
        await chair.client.call("session", {"action": "close"})
        gap = await filled_gap(site, 120)
        seconds = (gap.ended_at - gap.started_at).total_seconds()
        print(f"the centre's recording: a gap of {seconds:.1f} s for KH-17, filled by the node's copy "
              f"(recording {gap.filled_by_id})")
        assert 55 < seconds < 75, seconds


async def filled_gap(site: NodeSite, timeout: float) -> RecordingGap:
    """The gap of the centre's own recording of the session, once the node's copy has filled it."""
    async def check() -> RecordingGap | None:
        services = site.centre.services()
        try:
            async with services.db.read() as session:
                ours = await session.scalar(select(Recording).where(Recording.meeting_id == SESSION,
                                                                    Recording.started_by_id.is_not(None)))
        finally:
            await services.db.dispose()
        return ours.gaps[0] if ours is not None and ours.gaps and ours.gaps[0].filled_by_id else None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (gap := await check()) is None:
        if loop.time() > deadline:
            raise AssertionError(f"the node's copy did not fill the centre's gap within {timeout:.0f} s: "
                                 f"{site.node.log_tail()}")
        await asyncio.sleep(1)
    return gap


async def test_a_node_s_downlink_cap_thins_the_centre_s_cameras_to_fit(tmp_path: Path, centre_bots: list[Bot]) -> None:
    """``downlink_kbps`` below what the chair's camera sends: the centre sends its lower temporal layers only,
    the WAN carries no more than the cap, and the hall still sees the chair, at a lower frame rate."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    cap = 380
    async with node_in_a_site(tmp_path, node_env={"CABINET_PROVINCIAL_NODES__DOWNLINK_KBPS": str(cap)}) as site:
        chair = await started(centre_bots, await centre_bot(site, "chair", publish=True))
        chair_id = chair.client.participant_id
        hall = site.start_bot(AIDES[0], publish=False, seconds=90)
        await reached(lambda: (hall.frame_rate(chair_id, "video", time.time() - 4, time.time()) or 0) > 1, 40,
                      "the hall sees the chair")
        await asyncio.sleep(6)  # the layers settle within the cap
        link = next(iter(site.pipes.links.values()))
        source_kbps = sum(p.stats.bytes for p in site.pipes.rooms.rooms[SESSION].router.producers.values()
                          if p.participant_id == chair_id)
        down, _ = await site.wan_bytes()
        started_at = time.time()
        await asyncio.sleep(10)
        down2, _ = await site.wan_bytes()
        source_kbps = (sum(p.stats.bytes for p in site.pipes.rooms.rooms[SESSION].router.producers.values()
                           if p.participant_id == chair_id) - source_kbps) * 8 / 1000 / 10
        wan_kbps = (down2 - down) * 8 / 1000 / (time.time() - started_at)
        rate = hall.frame_rate(chair_id, "video", started_at, time.time())
        summary = link.summary()
        print(f"downlink cap {cap} kbit/s: the chair sends {source_kbps:.0f} kbit/s, the WAN carried {wan_kbps:.0f}; "
              f"the hall sees the chair at {rate} fps; layers {summary.layers}, {summary.thinned} packets thinned, "
              f"{link.pipe.sender.stats.layer_switches} switches up")
        assert summary.cap_kbps == cap and summary.thinned > 0 and not summary.over_limit
        assert link.pipe.sender.stats.layer_switches <= 3, "settled, not flipping between layers"
        async with Client(site.centre.url) as client:  # the secretariat's console says so
            await client.login("secretariat")
            status, page = await client.page("/nodes")
        assert status == 200 and f"capped at {cap} kbit/s" in page, page
        assert source_kbps > cap * 1.3, "the test needs a camera above the cap"
        assert wan_kbps <= cap * 1.1, (wan_kbps, cap)
        assert rate is not None and 1.5 < rate < 12, "the lower layers only, and no freeze"
        assert hall.proc.poll() is None, hall.log_tail()


async def test_ten_talking_at_the_centre_the_node_receives_at_most_four_voices(
        clean_node: NodeSite, centre_bots: list[Bot]) -> None:
    site = clean_node
    hall = site.start_bot(AIDES[0], publish=False, seconds=90)  # the node has a room for the session
    await reached(lambda: site.pipes.links and any(l.shares for l in site.pipes.links.values()), 40,
                  "the node shares the session")
    speakers = await asyncio.gather(*(centre_bot(site, name, publish=True, video=False) for name in CENTRE_SPEAKERS))
    centre_bots.extend(speakers)
    room = site.pipes.rooms.rooms[SESSION]
    voices = [p for p in room.router.producers.values() if p.kind == "audio"
              and p.participant_id in {b.client.participant_id for b in speakers}]
    assert len(voices) == 10
    await asyncio.sleep(5)  # the node's wants and the voices picked settle
    link = next(iter(site.pipes.links.values()))
    crossing: list[int] = []
    voice_bytes = sum(p.stats.bytes for p in voices)
    down, _ = await site.wan_bytes()
    for _ in range(50):  # 10 s
        crossing.append(sum(1 for tap in link.pipe.sender.taps.values() if tap.producer.kind == "audio"))
        await asyncio.sleep(0.2)
    down2, _ = await site.wan_bytes()
    per_voice = (sum(p.stats.bytes for p in voices) - voice_bytes) / 10
    ratio = (down2 - down) / max(1, per_voice)
    print(f"ten talking at the centre: {min(crossing)}-{max(crossing)} voices cross to the node; the WAN carried "
          f"{ratio:.1f} voices' bytes")
    assert 1 <= min(crossing) and max(crossing) <= 4, crossing
    # Opus packets are small: IP/UDP, the SRTP tag and RTP's header add ~40 % to each (and the tables of
    # eleven people, RTCP and keep-alives cross too); ten voices would be ~14 of their payloads.
    assert ratio < 7.5, "four voices and their packets' overhead, not ten"
    assert hall.proc.poll() is None, hall.log_tail()


async def test_on_a_poor_wan_the_pipe_recovers_what_the_link_loses(tmp_path: Path, centre_bots: list[Bot]) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    async with node_in_a_site(tmp_path, "poor") as site:  # 1 Mbit/s, 300 ms round trip, 5 % loss
        chair = await started(centre_bots, await centre_bot(site, "chair", publish=True))
        counters = await site.site.counters()
        report = await site.start_bot(AIDES[0], publish=False, seconds=30).report(timeout=120)
        after = await site.site.counters()
        link = next(iter(site.pipes.links.values()))
        audio = stream_of(report, chair.client.participant_id, "audio")
        video = stream_of(report, chair.client.participant_id, "video")
        assert audio and video, report["streams"]
        dropped = after["downlink"]["dropped_loss"] - counters["downlink"]["dropped_loss"]
        sent = link.pipe.sender.stats
        chair_ssrcs = {t.producer.ssrc for t in link.pipe.sender.taps.values()
                       if t.producer.participant_id == chair.client.participant_id}
        residual = sum(sent.remote_cumulative_lost.get(ssrc, 0) for ssrc in chair_ssrcs)  # the node's own reports
        print(f"poor WAN, 30 s: the link dropped {dropped} packets toward the node; the pipe resent "
              f"{sent.retransmitted} ({sent.retransmit_misses} too late) and the node reports {residual} still "
              f"lost; in the hall {audio['lost_packets']} audio ({audio['loss_percent']} %) and "
              f"{video['lost_packets']} video packets lost, {video['freezes']} video freezes, the longest "
              f"{video['longest_freeze_ms']:.0f} ms; carrier {link.transport.carrier if link.transport else None}")
        assert link.transport is not None and link.transport.carrier == "udp", "a lossy link is not a blocked one"
        assert dropped > 50, "the link did lose packets"
        assert residual <= 0.05 * dropped, "at least 95 % of what the WAN lost was recovered"
        assert audio["loss_percent"] < 1.0, audio
        assert video["longest_freeze_ms"] <= 1000, video


async def test_where_udp_is_blocked_the_pipe_rides_the_control_channel(tmp_path: Path, centre_bots: list[Bot]) -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    async with node_in_a_site(tmp_path, "tcponly") as site:  # a firewall that lets only TCP through
        chair = await started(centre_bots, await centre_bot(site, "chair", publish=True))
        observer = await started(centre_bots, await centre_bot(site, "observer", publish=False))
        site.start_bot("governor", publish=True, seconds=60)
        aide = site.start_bot(AIDES[0], publish=False, seconds=20)
        await asyncio.sleep(14)  # while the aide watches
        link = next(iter(site.pipes.links.values()))
        assert link.summary().carrier == "stream"
        tapped = [t for t in link.pipe.sender.taps.values() if t.producer.participant_id == chair.client.participant_id]
        assert {t.producer.kind for t in tapped} == {"audio", "video"}, "the node asked for the chair's media"
        assert link.pipe.sender.stats.reports_received > 10, "and reports receiving it"
        assert sum(link.pipe.sender.stats.remote_cumulative_lost.get(t.producer.ssrc or 0, 0) for t in tapped) <= 2
        report = await aide.report(timeout=90)
        chair_frames = sum(s["frames_received"] for s in report["streams"]
                           if s["participant_id"] == chair.client.participant_id and s["kind"] == "video")
        chair_video = max((s for s in report["streams"] if s["participant_id"] == chair.client.participant_id
                           and s["kind"] == "video"), key=lambda s: s["frames_received"], default=None)
        assert chair_video and chair_frames > 20, report["streams"]  # (its slot's layers are the hall's budget's)
        governor = centre_participant(site, "governor")
        assert governor is not None and frames_from(observer, governor.id) > 50, "the governor reaches the centre"
        counters = await site.site.counters()
        assert counters["uplink"]["dropped_policy"] > 0, "the node did try UDP first"
        print(f"UDP blocked: the hall got {chair_frames} frames of the chair in 20 s "
              f"({chair_video['lost_packets']} packets lost), the longest freeze {chair_video['longest_freeze_ms']} ms")
