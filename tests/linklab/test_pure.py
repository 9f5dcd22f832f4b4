"""Pure parts of the link lab: profiles, loss models, the rate/queue scheduler on a fake clock, and
the packet address parsing of the relay's policy."""

from __future__ import annotations

import random
import struct

import pytest

from linklab import PROFILES, LinkSpec, Profile, ProfileError, get_profile, parse_profile
from linklab.impairment import BernoulliLoss, Direction, GilbertElliottLoss, RateQueue, make_loss_model
from linklab.packets import address_int, describe, downlink_allowed, in_lab, ipv4_addresses, uplink_allowed


# -- profiles ---------------------------------------------------------------------------------------

def test_named_profiles_split_the_rtt_evenly_and_limit_both_ways() -> None:
    assert set(PROFILES) >= {"clean", "province", "poor", "bursty", "edge", "outage"}
    expected = {"province": (2000, 200, 0.01), "poor": (1000, 300, 0.05), "bursty": (1000, 300, 0.05),
                "edge": (512, 400, 0.05)}
    for name, (rate, rtt, loss) in expected.items():
        p = get_profile(name)
        assert p.rtt_ms == rtt and p.uplink.delay_ms == p.downlink.delay_ms == rtt / 2
        assert p.uplink.rate_kbit == p.downlink.rate_kbit == rate
        assert p.uplink.loss == p.downlink.loss == loss
    assert get_profile("bursty").uplink.burst == 2.5 and get_profile("poor").uplink.burst is None
    clean = get_profile("clean")
    assert clean.rtt_ms == 0 and clean.uplink.rate_kbit is None and clean.uplink.loss == 0
    assert get_profile("outage").outage_s == 10 and get_profile("outage60").outage_s == 60


def test_profile_specs_override_and_round_trip() -> None:
    p = parse_profile("poor,rtt_ms=250,loss_pct=2,rate_kbit=none,queue_ms=100")
    assert p.uplink.delay_ms == 125 and p.downlink.loss == 0.02 and p.uplink.rate_kbit is None
    assert p.uplink.queue_ms == 100 and p.name == "poor,rtt_ms=250,loss_pct=2,rate_kbit=none,queue_ms=100"
    assert Profile.from_dict(p.to_dict()) == p
    timed = parse_profile("outage,outage_at_s=1,outage_s=2.5")
    assert (timed.outage_at_s, timed.outage_s) == (1, 2.5)
    assert parse_profile(p) is p


@pytest.mark.parametrize("spec, message", [
    ("lossy", "unknown profile 'lossy'; known: clean, province"),
    ("poor,colour=red", "unknown profile setting 'colour'"),
    ("poor,loss_pct=abc", "loss_pct must be a number, not 'abc'"),
    ("poor,loss_pct=150", "loss_pct must be between 0 and 99, not 150"),
    ("poor,rtt_ms=-5", "rtt_ms must be between 0 and 120000, not -5"),
    ("poor,rate_kbit=0", "rate_kbit must be between 1 and"),
    ("poor,jitter_ms=500", "jitter_ms (500) must not exceed delay_ms (150)"),
    ("poor,queue_bytes=10", "queue_bytes must be an integer >= 1500"),
    ("poor,burst=0.5", "burst must be between 1 and 1000"),
    ("poor,loss_pct", "is not key=value"),
    ("", "a profile is a name like"),
])
def test_bad_profiles_are_refused_precisely(spec: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profile(spec)


def test_a_timed_outage_needs_both_values() -> None:
    with pytest.raises(ProfileError, match="needs both"):
        Profile("x", outage_at_s=1)


# -- loss models ------------------------------------------------------------------------------------

def bursts_of(losses: list[bool]) -> list[int]:
    runs, run = [], 0
    for lost in losses:
        if lost:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    return runs + ([run] if run else [])


def test_bernoulli_loss_rate_and_seeded_reproducibility() -> None:
    a = [BernoulliLoss(0.05, random.Random(1)).lost() for _ in range(1)]
    model = BernoulliLoss(0.05, random.Random(1))
    losses = [model.lost() for _ in range(100_000)]
    assert abs(sum(losses) / len(losses) - 0.05) < 0.003
    again = BernoulliLoss(0.05, random.Random(1))
    assert [again.lost() for _ in range(100_000)] == losses and a == losses[:1]
    assert 1.0 <= sum(bursts_of(losses)) / len(bursts_of(losses)) < 1.2  # independent: bursts of ~1


def test_gilbert_elliott_has_the_average_loss_and_mean_burst_asked_for() -> None:
    model = GilbertElliottLoss.from_average(0.05, 2.5, random.Random(2))
    assert model.r == pytest.approx(0.4) and model.p == pytest.approx(0.4 * 0.05 / 0.95)
    losses = [model.lost() for _ in range(200_000)]
    assert abs(sum(losses) / len(losses) - 0.05) < 0.004
    bursts = bursts_of(losses)
    assert 2.3 <= sum(bursts) / len(bursts) <= 2.7
    assert isinstance(make_loss_model(get_profile("bursty").uplink, random.Random()), GilbertElliottLoss)
    assert isinstance(make_loss_model(get_profile("poor").uplink, random.Random()), BernoulliLoss)


# -- rate and queue on a fake clock -----------------------------------------------------------------

def test_rate_queue_serializes_at_the_link_rate() -> None:
    q = RateQueue(1_000_000, queue_ms=1000)  # 1 Mbit/s: 1250 bytes take 10 ms
    assert q.admit(1250, 0.0) == pytest.approx(0.010)
    assert q.admit(1250, 0.0) == pytest.approx(0.020)  # waits behind the first
    assert q.backlog_s(0.005) == pytest.approx(0.015) and q.backlog_bytes(0.005) == 1875
    assert q.admit(1250, 1.0) == pytest.approx(1.010)  # idle link: no wait


def test_rate_queue_drops_at_the_tail_when_the_bound_is_reached() -> None:
    q = RateQueue(1_000_000, queue_ms=50)  # at most 50 ms (6250 bytes) queued
    departures = [q.admit(1250, 0.0) for _ in range(8)]
    assert departures[:5] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05]) and departures[5:] == [None] * 3
    assert q.admit(1250, 0.011) == pytest.approx(0.06)  # one left: room for one more
    by_bytes = RateQueue(1_000_000, queue_ms=1000, queue_bytes=2500)
    assert [by_bytes.admit(1250, 0.0) is not None for _ in range(3)] == [True, True, False]
    assert RateQueue(None, queue_ms=1).admit(10**6, 5.0) == 5.0  # unlimited


def test_direction_offered_load_above_the_rate_is_cut_to_the_rate_with_bounded_delay() -> None:
    spec = LinkSpec(delay_ms=100, rate_kbit=1000, queue_ms=200)
    d = Direction(spec, random.Random(0))
    now, delivered, delays = 0.0, 0, []
    for i in range(3000):  # 1000-byte packets at 1.5 Mbit/s for 16 s (fake clock)
        now = i * 1000 * 8 / 1_500_000
        when = d.offer(1000, now)
        if when is not None:
            delivered += 1
            delays.append(when - now)
            d.deliver(1000)
    assert delivered * 1000 * 8 / now == pytest.approx(1_000_000, rel=0.02)
    assert max(delays) <= 0.100 + 0.200 + 0.008 + 1e-9
    c = d.counters
    assert c.dropped_queue == 3000 - delivered and c.in_flight == 0


def test_direction_jitter_keeps_order_and_loss_is_counted() -> None:
    d = Direction(LinkSpec(delay_ms=50, jitter_ms=20, loss=0.1), random.Random(4))
    times = [d.offer(100, i * 0.001) for i in range(5000)]
    kept = [t for t in times if t is not None]
    assert kept == sorted(kept)
    assert d.counters.dropped_loss == 5000 - len(kept) and 400 < d.counters.dropped_loss < 600
    reorder = Direction(LinkSpec(delay_ms=50, jitter_ms=20, reorder=True), random.Random(4))
    mixed = [reorder.offer(100, i * 0.001) for i in range(1000)]
    assert mixed != sorted(mixed)


def test_direction_outage_and_policy_counts() -> None:
    d = Direction(LinkSpec(), random.Random(0))
    d.outage = True
    assert d.offer(100, 0.0) is None and d.counters.dropped_outage == 1
    d.outage = False
    when = d.offer(100, 1.0)
    d.outage = True  # a blackhole starts while the packet is in flight
    assert when == 1.0 and d.deliver(100) is False and d.counters.dropped_outage == 2
    d.refuse(60)
    assert d.counters.dropped_policy == 1 and d.counters.in_packets == 3 and d.counters.in_bytes == 260
    assert d.counters.in_flight == 0


def test_reconfiguring_keeps_counters_and_backlog() -> None:
    d = Direction(LinkSpec(rate_kbit=1000, queue_ms=500), random.Random(0))
    for _ in range(10):
        d.offer(1250, 0.0)
    d.configure(LinkSpec(rate_kbit=500, queue_ms=500))
    assert d.counters.in_packets == 10 and d.queue.busy_until == pytest.approx(0.1)
    assert d.offer(1250, 0.0) == pytest.approx(0.12)


# -- packets ----------------------------------------------------------------------------------------

def ipv4(src: str, dst: str, proto: int = 17, payload: bytes = b"x" * 8) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                         address_int(src).to_bytes(4, "big"), address_int(dst).to_bytes(4, "big"))
    return header + payload


def test_address_parsing_and_the_lab_range() -> None:
    packet = ipv4("198.18.3.2", "198.18.0.1")
    assert ipv4_addresses(packet) == (address_int("198.18.3.2"), address_int("198.18.0.1"))
    assert ipv4_addresses(b"\x45" + b"\0" * 10) is None  # too short
    assert ipv4_addresses(b"\x60" + b"\0" * 39) is None  # IPv6
    assert ipv4_addresses(b"\x44" + b"\0" * 19) is None  # IHL < 5
    assert in_lab(address_int("198.18.0.1")) and in_lab(address_int("198.19.255.254"))
    for outside in ("198.17.255.255", "198.20.0.0", "10.0.0.1", "192.168.1.1", "172.16.0.1", "8.8.8.8", "127.0.0.1"):
        assert not in_lab(address_int(outside))
    assert describe(packet) == "IPv4 proto 17 198.18.3.2 -> 198.18.0.1, 28 bytes"


def test_relay_policy_by_direction() -> None:
    site = address_int("198.18.3.2")
    assert uplink_allowed(ipv4("198.18.3.2", "198.18.0.1"), site)
    assert not uplink_allowed(ipv4("198.18.3.2", "192.0.2.2"), site)  # the host's own address
    assert not uplink_allowed(ipv4("198.18.3.2", "1.1.1.1"), site)  # the Internet
    assert not uplink_allowed(ipv4("198.18.9.2", "198.18.0.1"), site)  # spoofed source
    assert not uplink_allowed(b"\x60" + b"\0" * 47, site)  # IPv6
    assert downlink_allowed(ipv4("198.18.0.1", "198.18.3.2"), site)
    assert not downlink_allowed(ipv4("198.18.0.1", "198.18.4.2"), site)  # another site's
    assert not downlink_allowed(ipv4("198.18.3.1", "224.0.0.22", proto=2), site)  # IGMP
    assert not downlink_allowed(ipv4("192.0.2.2", "198.18.3.2"), site)
