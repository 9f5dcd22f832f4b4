"""One measured run of the poor-links matrix: loopback bots publish, a real Chromium "governor" in a lab site
watches, and the page's receiving connection and the site's relay are sampled every ``interval`` seconds.

The set-up is that of a cabinet session seen from a province: the chair (a loopback bot, audio and
video, speaking) holds the stage; ``thumbnails`` more loopback bots publish video only (the secretariat,
the commander) and fill thumbnail slots; the governor's room page joins from the site, publishes its fake
camera (microphone muted, so that its beep never takes the stage) and plays what the server sends.

The page joins over a clean link; the link then changes to the run's profile and the measurement starts
after ``warmup`` seconds. (Joining over 64 kbit/s would take the page's own scripts a minute; what is
measured is how the media of a running session survives the link, including the server's reaction to
a link that got worse than what it saw at the join.) For a ``Fall`` the link drops to ``rate_kbit``
``at_s`` seconds into the measurement, for ``seconds``, and comes back.

Samples come from what the page exposes: ``window.cabinetRoom.recvPc.getStats()`` mapped to slots
through ``window.cabinetRoom.slotsByMid`` (the page's own stats.js reads only a summary), and, where the
server adapts, ``slotStates`` (each slot's state and VP8 temporal layer) and ``ownLink`` (the server's
estimate of the site's link) from its ``slot_state`` event. Nothing is added to the page. The relay's
counters are read over its control pipe at the same moments.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright

from bots.media_files import MediaParams, load_media
from bot_process import BotProcess
from browser_site import join_from_site, launch_in_site, until
from harness import LiveServer, make_config
from linklab import Lab, Profile, Site, override, parse_profile
from meetings.demo import DEMO_PASSWORD
from meetings.policy import Caller

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)

#: Video-only thumbnail publishers besides the chair: username, full name, office (provinces invited to
#: the demo cabinet session; the demo's own commander is not invited to it).
THUMBNAIL_PUBLISHERS = (("site1", "Chea Bopha (Governor of Banteay Meanchey)", "KH-1"),
                        ("site3", "Heng Sokha (Governor of Kampong Cham)", "KH-3"))

#: What is read from the page per sample (see the module docstring: all of it exists on the page today).
SAMPLE_JS = """async () => {
  const room = window.cabinetRoom;
  if (!room || !room.recvPc) { return null; }  // between connections (reconnecting)
  const out = { at: performance.now(), phase: room.phase, reconnects: room.reconnects, stageId: room.stageId,
                inbound: [], outbound: [],
                rtt: null, incoming: null, outgoing: null, layers: null, link: null, elements: [] };
  const num = (v) => (typeof v === "number" ? v : null);
  (await room.recvPc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") {
      const slot = s.mid === undefined ? null : room.slotsByMid.get(String(s.mid));
      out.inbound.push({
        slotId: slot ? slot.id : null, participantId: slot ? slot.shown.participantId : null, kind: s.kind,
        timestamp: s.timestamp, packetsReceived: s.packetsReceived || 0, packetsLost: s.packetsLost || 0,
        bytesReceived: s.bytesReceived || 0, totalSamplesReceived: s.totalSamplesReceived || 0,
        concealedSamples: s.concealedSamples || 0, silentConcealedSamples: s.silentConcealedSamples || 0,
        concealmentEvents: s.concealmentEvents || 0, framesDecoded: s.framesDecoded || 0,
        framesReceived: s.framesReceived || 0, framesDropped: s.framesDropped || 0,
        framesPerSecond: num(s.framesPerSecond), freezeCount: s.freezeCount || 0,
        totalFreezesDuration: s.totalFreezesDuration || 0, frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0, nackCount: s.nackCount || 0, pliCount: s.pliCount || 0,
        jitterBufferDelay: s.jitterBufferDelay || 0, jitterBufferEmittedCount: s.jitterBufferEmittedCount || 0,
      });
    } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      out.rtt = num(s.currentRoundTripTime);
      out.incoming = num(s.availableIncomingBitrate);
    }
  });
  if (room.sendPc && room.sendPc.connectionState !== "closed") {
    (await room.sendPc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp") {
        out.outbound.push({ kind: s.kind, bytesSent: s.bytesSent || 0, targetBitrate: num(s.targetBitrate),
                            frameWidth: s.frameWidth || 0, qualityLimitationReason: s.qualityLimitationReason || null });
      } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
        out.outgoing = num(s.availableOutgoingBitrate);
      }
    });
  }
  // What the server says of this site (slot_state, room-links.js): each slot's state and layer, and the
  // site's link (estimate, loss, mode). Absent on a server that does not adapt: null.
  out.layers = room.slotStates && Object.keys(room.slotStates).length ? room.slotStates : null;
  out.link = room.ownLink || null;
  // A remote audio track counts samples only while an element plays it.
  document.querySelectorAll("#audio-sink audio").forEach((el) => {
    out.elements.push({ slotId: el.dataset.slotId || null, paused: el.paused, muted: el.muted });
  });
  return out;
}"""


@dataclass(frozen=True)
class Fall:
    """The link's rate falls to ``rate_kbit`` ``at_s`` seconds into the measurement, for ``seconds``."""

    rate_kbit: float = 300.0
    at_s: float = 12.0
    seconds: float = 30.0


@dataclass
class RunPlan:
    """What one run does (a profile name or spec, durations in seconds)."""

    profile: str | Profile
    seconds: float = 30.0
    warmup: float = 10.0
    interval: float = 0.25
    thumbnails: int = 2
    fall: Fall | None = None
    seed: int = 1
    media_cache: Path | None = None


@dataclass
class Sample:
    """One sampling moment: seconds since the measurement started (negative: warm-up), the page's stats
    (None before the receiving connection exists) and the relay's counters."""

    t: float
    page: dict[str, Any] | None
    relay: dict[str, dict[str, int]]


@dataclass
class RunRecord:
    """Everything a run saw; link_metrics.py turns it into numbers."""

    plan: RunPlan
    profile: Profile
    samples: list[Sample] = field(default_factory=list)
    #: (seconds into the measurement, downlink rate in kbit/s or None) at every link change.
    rate_changes: list[tuple[float, float | None]] = field(default_factory=list)
    fall_at: float | None = None
    recover_at: float | None = None
    setup_s: float = 0.0
    total_s: float = 0.0
    stage_participant: str | None = None
    chair_id: str | None = None


async def _add_people(server: LiveServer, count: int) -> list[str]:
    services = server.services()
    try:
        offices = {o.code: o.id for o in await services.offices.list(Caller.cli())}
        for username, full_name, code in THUMBNAIL_PUBLISHERS[:count]:
            await services.people.create(Caller.cli(), username=username, full_name=full_name,
                                         office_id=offices[code], roles=["delegate"], password=DEMO_PASSWORD)
    finally:
        await services.db.dispose()
    return [username for username, _, _ in THUMBNAIL_PUBLISHERS[:count]]


async def _publishers(url: str, server: LiveServer, plan: RunPlan, work_dir: Path) -> list[BotProcess]:
    cache = plan.media_cache or work_dir / "media"
    await asyncio.to_thread(load_media, MediaParams(), cache)  # encoded once, here; the bots read the cache
    bots: list[BotProcess] = []
    names = ("chair", *await _add_people(server, plan.thumbnails))
    stay = plan.seconds + plan.warmup + (plan.fall.at_s + plan.fall.seconds if plan.fall else 0) + 120
    try:
        for name in names:
            chair = name == "chair"
            args = [sys.executable, "-m", "bots", "--url", url, "--token", await server.join_token(name),
                    "--publish", "--name", name, "--bind", "127.0.0.1", "--no-reconnect", "--cache-dir", str(cache),
                    "--seconds", str(stay)]
            if not chair:
                args += ["--no-audio"]
            log_path = work_dir / f"bot-{name}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            bots.append(BotProcess(name, proc, log_path))
    except BaseException:
        _stop(bots)
        raise
    return bots


def _stop(bots: list[BotProcess]) -> None:
    for bot in bots:
        bot.stop()


async def _person_id(server: LiveServer, username: str) -> int:
    services = server.services()
    try:
        return (await services.people.find(Caller.cli(), username)).id
    finally:
        await services.db.dispose()


async def _page_stats(page: Page) -> dict[str, Any] | None:
    try:
        return await page.evaluate(SAMPLE_JS)  # type: ignore[no-any-return]
    except PlaywrightError as error:  # the page reloading itself: no stats this time
        if "context was destroyed" in str(error) or "navigation" in str(error):
            return None
        raise


async def _sample(page: Page, site: Site, t0: float) -> Sample:
    stats, relay = await asyncio.gather(_page_stats(page), site.counters())
    return Sample(time.monotonic() - t0, stats, relay)


async def run_once(lab: Lab, plan: RunPlan, work_dir: Path, site_name: str = "gov") -> RunRecord:
    """One run in ``lab`` (a fresh site, server and bots; all stopped at the end)."""
    started = time.monotonic()
    profile = parse_profile(plan.profile)
    record = RunRecord(plan, profile)
    site = await lab.add_site(site_name, "clean", seed=plan.seed)
    config = make_config(work_dir / "data", **{"media.ice_bind_addresses": ["127.0.0.1", lab.server_address]})
    server = await asyncio.to_thread(LiveServer(config, host=lab.server_address).start)
    bots: list[BotProcess] = []
    try:
        bots = await _publishers(server.url, server, plan, work_dir)
        chair_person = await _person_id(server, "chair")
        async with async_playwright() as playwright:
            browser = await launch_in_site(playwright, site, work_dir / "bin", server.url)
            try:
                governor = await join_from_site(browser, server.url, "governor")
                page = governor.page
                find_chair = ("Array.from(window.cabinetRoom.participants.values()).filter("
                              f"(p) => p.info.person_id === {chair_person}).map((p) => p.id)[0] || null")
                try:
                    chair_id = await until(page, find_chair, timeout=40)
                    await until(page, "window.cabinetRoom.slots.get('stage-video').shown.participantId === "
                                      f"'{chair_id}'", timeout=40)
                except Exception:
                    raise RuntimeError("the chair's bot is not on the stage: "
                                       + " | ".join(b.log_tail() for b in bots)) from None
                record.chair_id = chair_id
                await site.set_profile(profile)
                logger.info("the site's link is now %s; measuring in %.0f s", profile.name, plan.warmup)
                record.setup_s = time.monotonic() - started
                t0 = time.monotonic() + plan.warmup
                record.rate_changes.append((-plan.warmup, profile.downlink.rate_kbit))
                fall = plan.fall
                next_at = time.monotonic()
                while time.monotonic() - t0 < plan.seconds:
                    now = time.monotonic() - t0
                    if fall and record.fall_at is None and now >= fall.at_s:
                        await site.set_profile(override(profile, rate_kbit=fall.rate_kbit))
                        record.fall_at = time.monotonic() - t0
                        record.rate_changes.append((record.fall_at, fall.rate_kbit))
                    elif fall and record.fall_at is not None and record.recover_at is None \
                            and now >= record.fall_at + fall.seconds:
                        await site.set_profile(profile)
                        record.recover_at = time.monotonic() - t0
                        record.rate_changes.append((record.recover_at, profile.downlink.rate_kbit))
                    sample = await _sample(page, site, t0)
                    record.samples.append(sample)
                    logger.debug("sample at %.2f s: %s", sample.t, sample.page and sample.page.get("link"))
                    next_at += plan.interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                record.stage_participant = await page.evaluate("window.cabinetRoom.stageId")
                await governor.context.close()
            finally:
                await asyncio.wait_for(browser.close(), 20)
    finally:
        await asyncio.to_thread(_stop, bots)
        await asyncio.to_thread(server.stop)
        await lab.remove_site(site_name)
    record.total_s = time.monotonic() - started
    return record
