"""A site's budget over its slots: the estimate shared audio first, down at once, up only after a
quiet period and a probe with padding, requests (choice, hidden tiles) pausing without cost, RED on
loss; the ``state`` it reports. Driven tick by tick with made-up time, real slots and producers."""

from __future__ import annotations

from dataclasses import replace

from slot_helpers import audio_params, make_source, video_params

from media.bandwidth import RembLossEstimator
from media.rtp_packet import RtpPacketView
from media.site_budget import SiteBudget, SiteState, SlotView
from media.slot import PAUSED
from media.slot_assignment import SlotPlan
from media.slot_set import SlotSet

PATTERN = ((0, False), (2, True), (1, True), (2, False))
#: The stream the made-up receiver reports on every second (none of the slots': no loss, only news).
FEEDBACK_SSRC = 999


class Site:
    def __init__(self, *, red: bool = False) -> None:
        self.sent: list[bytes] = []
        self.slots = SlotSet(subscriber_id="site", cname="c", send_rtp=lambda d: self.sent.append(d) or True,
                             send_rtcp=lambda d: True, videos=2, audios=1)
        for slot in self.slots.slots.values():
            if slot.kind == "video":
                slot.configure(replace(video_params(100, 101, slot.id), remb=True))
            else:
                slot.configure(replace(audio_params(111, slot.id), red_payload_type=63 if red else None))
        self.now = 0
        self.feedback = True
        self.feedback_sequence = 0
        self.estimator = RembLossEstimator(600_000, remb_warmup_ms=0)
        self.budget = SiteBudget(self.slots, self.estimator, clock=lambda: self.now)
        self.states: list[SiteState] = []
        self.budget.on("state", self.states.append)
        self.voice = make_source("voice", "audio", ssrc=10, pt=111)
        self.videos = [make_source(f"cam{i}", ssrc=20 + 2 * i) for i in range(3)]
        producers = {s.producer.id: s.producer for s in (self.voice, *self.videos)}
        self.slots.apply(SlotPlan("voice", "cam0", ("cam1", "cam2"), (None,)), producers)
        for cam in self.videos:
            cam.layered(0, key=True, sync=True, size=1150)

    def media(self, slot_id: str) -> int:
        slot = self.slots.slots[slot_id]
        return sum(1 for d in self.sent if RtpPacketView.parse(d).ssrc == slot.ssrc)

    def run(self, seconds: float) -> None:
        """``seconds`` of media (15 fps L1T3 video ~ 1200-byte packets, 50 audio packets/s), ticking
        the budget every 500 ms, pacing its padding every 25 ms and (``feedback``) a receiver report
        every second."""
        for _ in range(int(seconds * 40)):
            self.now += 25
            if self.now % 20 == 0 or self.now % 25 == 0:
                self.voice.audio()
            if self.now % 75 == 0:
                for cam in self.videos:
                    tid, sync = PATTERN[(self.now // 75) % 4]
                    cam.layered(tid, sync=sync, packets=2, size=1150)
            self.budget.pace(self.now)
            if self.now % 1000 == 0 and self.feedback:  # the receiver's reports of a stream all went through
                self.feedback_sequence += 50
                self.estimator.on_report(FEEDBACK_SSRC, 0, self.now, highest_sequence=self.feedback_sequence)
            if self.now % 500 == 0:
                self.budget.tick(self.now)

    def layers(self) -> list[int]:
        return [self.slots.slots[s].target_layer for s in ("stage-video", "video-0", "video-1")]


async def test_an_unknown_link_is_probed_soon_and_in_large_steps() -> None:
    site = Site()
    site.run(6.5)
    state = site.budget.state
    assert state is not None and state.estimate > 600_000, "a link with no congestion: found in seconds"
    assert site.layers() == [2, 2, 2]
    assert state.slots["stage-audio"][0] == "active"


async def test_a_falling_remb_steps_down_at_once_and_up_only_after_quiet_and_a_probe() -> None:
    site = Site()
    site.estimator.on_remb(3_000_000, 0)
    site.run(12)
    high = site.layers()
    assert high == [2, 2, 2], high
    site.estimator.on_remb(250_000, site.now)  # a fall: congestion, 0.85 of what was sent at most
    site.run(0.5)
    assert sum(site.layers()) < sum(high), "a step down in the tick after the signal"
    for _ in range(4):  # the loss that shows the link is really that slow: a step down per report
        if site.layers()[1:] == [PAUSED, PAUSED]:
            break
        for slot in site.slots.slots.values():
            site.estimator.on_report(slot.ssrc, 100, site.now)
        site.run(0.5)
    low = site.layers()
    assert low[1:] == [PAUSED, PAUSED] and low[0] in (0, 1), low
    assert site.budget.state is not None and site.budget.state.slots["video-0"][0] == "paused_bandwidth"
    site.estimator.on_remb(3_000_000, site.now)  # the receiver's estimate is back up
    site.run(4)
    assert site.layers() == low, "no step up within 5 s of the step down"
    padding_before = sum(s.stats.padding_bytes_sent for s in site.slots.slots.values())
    site.run(45)  # from ~120 kbit/s: a probe of 1.15-1.5 x every ~4 s
    assert site.layers() == [2, 2, 2]
    assert sum(s.stats.padding_bytes_sent for s in site.slots.slots.values()) >= padding_before


async def test_a_probe_raises_a_low_estimate_when_the_link_carries_it() -> None:
    site = Site()
    site.estimator = RembLossEstimator(250_000, remb_warmup_ms=0)
    site.budget.estimator = site.estimator
    site.run(2)
    low = site.layers()
    site.run(25)
    assert site.estimator.estimate(site.now) > 250_000, "probes found more room"
    assert site.layers() > low
    assert sum(s.stats.padding_bytes_sent for s in site.slots.slots.values()) > 0


async def test_a_probe_that_meets_congestion_does_not_raise_the_estimate() -> None:
    site = Site()
    site.estimator = RembLossEstimator(250_000, remb_warmup_ms=0)
    site.budget.estimator = site.estimator
    probes = 0
    for _ in range(40):  # every probe meets a falling REMB
        site.run(0.5)
        if site.budget.probing:
            probes += 1
            site.estimator.on_remb(400_000, site.now, source=1)
            site.estimator.on_remb(200_000, site.now, source=1)
    assert probes >= 2
    assert site.estimator.estimate(site.now) <= 250_000


def congested_site(estimate: int) -> Site:
    """A site whose link has already shown congestion (probes of 1.5 s, after 5 s of quiet)."""
    site = Site()
    site.estimator = RembLossEstimator(2 * estimate, remb_warmup_ms=0)
    site.budget.estimator = site.estimator
    site.estimator.on_remb(2 * estimate, 0, source=1)
    site.estimator.on_remb(estimate, 0, source=1)
    return site


def run_until_probing(site: Site, seconds: float) -> None:
    for _ in range(int(seconds * 40)):
        if site.budget.probing:
            return
        site.run(0.025)
    raise AssertionError(f"no probe within {seconds} s")


async def test_a_probe_makes_up_what_is_sent_to_its_rate_and_stops_at_congestion() -> None:
    site = congested_site(250_000)
    run_until_probing(site, 15)
    start, target = site.now, site.budget._probe_target
    sent_before = sum(site.budget._sent_parts())
    site.run(site.budget.probe_ms / 1000)
    sent = sum(site.budget._sent_parts()) - sent_before
    assert 0.8 <= sent * 8 / (target * site.budget.probe_ms / 1000) <= 1.1, (sent, target)
    site.estimator.on_remb(400_000, site.now, source=1)
    site.estimator.on_remb(200_000, site.now, source=1)  # the probe overshot
    padding = sum(s.stats.padding_bytes_sent for s in site.slots.slots.values())
    site.run(0.5)
    assert sum(s.stats.padding_bytes_sent for s in site.slots.slots.values()) == padding, "no padding after it"
    assert not site.budget.probing and site.now - start < 2000
    assert site.estimator.estimate(site.now) == 250_000, "a failed probe costs nothing of the estimate"


async def test_failed_probes_wait_longer_and_aim_no_higher() -> None:
    site = congested_site(250_000)
    starts: list[tuple[int, int]] = []
    for _ in range(4):
        run_until_probing(site, 45)
        starts.append((site.now, site.budget._probe_target))
        site.estimator.on_remb(400_000, site.now, source=1)
        site.estimator.on_remb(200_000, site.now, source=1)
        site.run(0.5)
    gaps = [b[0] - a[0] for a, b in zip(starts, starts[1:])]
    assert gaps == sorted(gaps) and gaps[-1] > 2 * gaps[0], gaps
    assert max(t for _, t in starts) <= 1.05 * starts[0][1], starts
    assert all(t <= 250_000 * 1.5 for _, t in starts), "a probe aims at the next step, not beyond 1.5 x"


async def test_requests_pause_at_once_and_come_back_without_a_probe() -> None:
    site = Site()
    site.estimator.on_remb(3_000_000, 0)
    site.run(12)
    site.budget.set_views({"video-1": SlotView(visible=False)})
    assert site.layers()[2] == PAUSED
    assert site.budget.state is not None and site.budget.state.slots["video-1"] == ("paused_request", PAUSED)
    count = site.media("video-1")
    site.run(1)
    assert site.media("video-1") == count, "nothing is sent for a hidden tile"
    site.budget.set_views({"video-1": SlotView(visible=True)})
    site.run(1)
    assert site.layers()[2] >= 0
    site.budget.set_mode("audio")
    assert site.layers() == [PAUSED] * 3
    assert {site.budget.state.slots[s][0] for s in ("stage-video", "video-0", "video-1")} == {"paused_request"}
    site.budget.set_mode("low")
    site.run(1)
    assert site.layers() == [1, 0, 0]


async def test_unknown_slots_and_modes_are_refused() -> None:
    import pytest

    site = Site()
    with pytest.raises(ValueError, match="unknown slot"):
        site.budget.set_views({"video-9": SlotView()})
    with pytest.raises(ValueError, match="choice"):
        site.budget.set_mode("hd")  # type: ignore[arg-type]


async def test_loss_turns_red_on_and_quiet_turns_it_off() -> None:
    site = Site(red=True)
    site.run(1)
    assert not site.slots.slots["stage-audio"].red
    site.estimator.on_report(site.slots.slots["stage-audio"].ssrc, 13, site.now)  # 5 %
    site.run(1)
    assert site.slots.slots["stage-audio"].red and site.budget.state is not None and site.budget.state.red
    for _ in range(24):
        site.estimator.on_report(site.slots.slots["stage-audio"].ssrc, 0, site.now)
        site.run(0.5)
    assert not site.slots.slots["stage-audio"].red


async def test_a_remb_from_a_peer_that_did_not_negotiate_it_is_ignored() -> None:
    site = Site()
    for slot in site.slots.slots.values():
        if slot.kind == "video":
            slot.parameters = replace(slot.parameters, remb=False)  # type: ignore[arg-type]
    site.budget.on_remb(50_000, 1)
    assert site.estimator.remb is None


async def test_red_stays_off_where_the_audio_twice_over_does_not_fit() -> None:
    site = Site(red=True)
    site.estimator.on_remb(1_000_000, 0)
    site.estimator.on_remb(60_000, 10)  # a 64 kbit/s site
    site.run(1)
    site.estimator.on_report(site.slots.slots["stage-audio"].ssrc, 13, site.now)  # 5 % loss
    site.run(1)
    assert not site.slots.slots["stage-audio"].red
    assert site.layers() == [PAUSED] * 3 and site.budget.state is not None
    assert site.budget.state.slots["stage-audio"][0] == "active", "audio only, one voice"



async def test_a_probe_that_hears_nothing_back_does_not_raise_the_estimate() -> None:
    site = congested_site(250_000)
    site.feedback = False  # a 64 kbit/s uplink jammed: no report comes
    run_until_probing(site, 15)
    site.run(3)
    assert site.estimator.estimate(site.now) == 250_000 and site.budget._probe_failures == 1


def probe_targets(site: Site, count: int) -> list[tuple[int, int]]:
    """(estimate, target) of the next ``count`` probes, each carried (feedback on, no congestion)."""
    targets = []
    for _ in range(count):
        run_until_probing(site, 30)
        targets.append((site.estimator.estimate(site.now), site.budget._probe_target))
        while site.budget.probing or site.budget._probe_start_ms is not None:
            site.run(0.025)
    return targets


async def test_a_link_that_came_back_is_probed_doubling_up_to_what_it_carried() -> None:
    site = congested_site(150_000)
    site.budget._held_bps, site.budget._held_ms = 1_000_000, site.now  # it carried 1 Mbit/s lately
    (first_estimate, first), (second_estimate, second), _ = probe_targets(site, 3)
    assert first <= 1.5 * first_estimate, "the first probe after congestion steps as usual"
    assert second_estimate >= first and second == min(2 * second_estimate, 1_000_000), (second_estimate, second)
    # a link that never carried more steps as usual
    site = congested_site(150_000)
    for estimate, target in probe_targets(site, 3):
        assert target <= 1.5 * estimate + 1, (estimate, target)


async def test_a_failed_probe_counts_once_not_again_against_the_success_before_it() -> None:
    site = congested_site(250_000)
    probe_targets(site, 1)  # carried
    run_until_probing(site, 30)
    site.estimator.on_remb(400_000, site.now, source=1)
    site.estimator.on_remb(200_000, site.now, source=1)  # the next one fails
    site.run(3)
    assert site.budget._probe_failures == 1 and site.budget._probe_streak == 0
