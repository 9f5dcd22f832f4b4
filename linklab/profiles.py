"""Named link profiles (provincial uplinks and worse) and their parsing.

A profile holds one ``LinkSpec`` per direction: uplink (site -> server) and downlink (server -> site).
The round-trip time of a named profile is split evenly between the two directions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .errors import ProfileError

#: Drop-tail queue bound used when a profile says nothing else (time to drain at the link rate).
DEFAULT_QUEUE_MS = 250.0


@dataclass(frozen=True)
class LinkSpec:
    """Impairment of one direction of a link."""

    #: One-way propagation delay.
    delay_ms: float = 0.0
    #: Uniform jitter of +/- this much around ``delay_ms`` (packets stay in order unless ``reorder``).
    jitter_ms: float = 0.0
    #: Average packet loss, 0..1.
    loss: float = 0.0
    #: Mean loss-burst length in packets; None or 1: independent (Bernoulli) loss, > 1: Gilbert-Elliott.
    burst: float | None = None
    #: Link rate in kbit/s (1000 bit/s); None: unlimited.
    rate_kbit: float | None = None
    #: Drop-tail queue bound as time to drain at the link rate.
    queue_ms: float = DEFAULT_QUEUE_MS
    #: Optional drop-tail queue bound in bytes (the smaller of the two bounds applies).
    queue_bytes: int | None = None
    #: Let jitter reorder packets.
    reorder: bool = False

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkSpec:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ProfileError(f"unknown link setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def _number(name: str, value: Any, *, minimum: float = 0.0, maximum: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProfileError(f"{name} must be a finite number, not {value!r}")
    if not minimum <= value <= maximum:
        raise ProfileError(f"{name} must be between {minimum:g} and {maximum:g}, not {value:g}")


def _check(spec: LinkSpec) -> None:
    _number("delay_ms", spec.delay_ms, maximum=60_000)
    _number("jitter_ms", spec.jitter_ms, maximum=10_000)
    if spec.jitter_ms > spec.delay_ms:
        raise ProfileError(f"jitter_ms ({spec.jitter_ms:g}) must not exceed delay_ms ({spec.delay_ms:g})")
    _number("loss", spec.loss, maximum=0.99)
    if spec.burst is not None:
        _number("burst", spec.burst, minimum=1.0, maximum=1000)
        if spec.burst > 1 and spec.loss > 0 and spec.loss / (1 - spec.loss) / spec.burst >= 1:
            raise ProfileError(f"loss {spec.loss:g} with mean burst {spec.burst:g} is not a valid Gilbert-Elliott chain")
    if spec.rate_kbit is not None:
        _number("rate_kbit", spec.rate_kbit, minimum=1, maximum=10_000_000)
    _number("queue_ms", spec.queue_ms, minimum=1, maximum=60_000)
    if spec.queue_bytes is not None:
        if isinstance(spec.queue_bytes, bool) or not isinstance(spec.queue_bytes, int) or spec.queue_bytes < 1500:
            raise ProfileError(f"queue_bytes must be an integer >= 1500, not {spec.queue_bytes!r}")
    if not isinstance(spec.reorder, bool):
        raise ProfileError(f"reorder must be true or false, not {spec.reorder!r}")


@dataclass(frozen=True)
class Profile:
    """A named two-way link, with an optional timed outage (blackhole)."""

    name: str
    uplink: LinkSpec = field(default_factory=LinkSpec)
    downlink: LinkSpec = field(default_factory=LinkSpec)
    #: A blackhole starts this many seconds after the relay starts (None: no timed outage) ...
    outage_at_s: float | None = None
    #: ... and lasts this long.
    outage_s: float | None = None
    description: str = ""
    #: A firewall that lets only TCP through (and ICMP): every UDP datagram is refused, both ways.
    udp_blocked: bool = False

    def __post_init__(self) -> None:
        if (self.outage_at_s is None) != (self.outage_s is None):
            raise ProfileError("a timed outage needs both outage_at_s and outage_s")
        if self.outage_at_s is not None:
            _number("outage_at_s", self.outage_at_s, maximum=86_400)
            _number("outage_s", self.outage_s, minimum=0.001, maximum=86_400)

    @property
    def rtt_ms(self) -> float:
        return self.uplink.delay_ms + self.downlink.delay_ms

    def with_both(self, **changes: Any) -> Profile:
        """The same profile with ``changes`` applied to both directions."""
        try:
            return replace(self, uplink=replace(self.uplink, **changes), downlink=replace(self.downlink, **changes))
        except TypeError as exc:
            raise ProfileError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "uplink": self.uplink.to_dict(), "downlink": self.downlink.to_dict(),
                "outage_at_s": self.outage_at_s, "outage_s": self.outage_s, "description": self.description,
                "udp_blocked": self.udp_blocked}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        try:
            return cls(name=str(data["name"]), uplink=LinkSpec.from_dict(dict(data["uplink"])),
                       downlink=LinkSpec.from_dict(dict(data["downlink"])), outage_at_s=data.get("outage_at_s"),
                       outage_s=data.get("outage_s"), description=str(data.get("description", "")),
                       udp_blocked=data.get("udp_blocked") is True)
        except (KeyError, TypeError) as exc:
            raise ProfileError(f"bad profile data: {exc}") from None

    def summary(self) -> str:
        def one(spec: LinkSpec) -> str:
            rate = "unlimited" if spec.rate_kbit is None else f"{spec.rate_kbit:g} kbit/s"
            burst = f" in bursts of {spec.burst:g}" if spec.burst and spec.burst > 1 else ""
            return (f"{rate}, {spec.delay_ms:g}±{spec.jitter_ms:g} ms, loss {spec.loss * 100:g}%{burst}, "
                    f"queue {spec.queue_ms:g} ms")
        text = f"up: {one(self.uplink)}; down: {one(self.downlink)}"
        if self.outage_at_s is not None:
            text += f"; blackhole for {self.outage_s:g} s after {self.outage_at_s:g} s"
        if self.udp_blocked:
            text += "; UDP blocked (TCP only)"
        return text


def symmetric(name: str, *, rate_kbit: float | None, rtt_ms: float, loss_pct: float, jitter_ms: float = 0.0,
              burst: float | None = None, queue_ms: float = DEFAULT_QUEUE_MS, description: str = "",
              outage_at_s: float | None = None, outage_s: float | None = None) -> Profile:
    """The same impairment both ways; the RTT is split evenly between the directions."""
    _number("rtt_ms", rtt_ms, maximum=120_000)
    _number("loss_pct", loss_pct, maximum=99)
    spec = LinkSpec(delay_ms=rtt_ms / 2, jitter_ms=jitter_ms, loss=loss_pct / 100, burst=burst,
                    rate_kbit=rate_kbit, queue_ms=queue_ms)
    return Profile(name=name, uplink=spec, downlink=spec, outage_at_s=outage_at_s, outage_s=outage_s,
                   description=description)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        symmetric("clean", rate_kbit=None, rtt_ms=0, loss_pct=0, description="no impairment"),
        symmetric("province", rate_kbit=2000, rtt_ms=200, loss_pct=1, jitter_ms=4,
                  description="a typical provincial uplink: 2 Mbit/s, 200 ms RTT, 1 % loss"),
        symmetric("poor", rate_kbit=1000, rtt_ms=300, loss_pct=5, jitter_ms=8,
                  description="a poor uplink: 1 Mbit/s, 300 ms RTT, 5 % loss"),
        symmetric("bursty", rate_kbit=1000, rtt_ms=300, loss_pct=5, jitter_ms=8, burst=2.5,
                  description="as poor, the loss in bursts (Gilbert-Elliott, mean burst 2.5 packets)"),
        symmetric("edge", rate_kbit=512, rtt_ms=400, loss_pct=5, jitter_ms=15,
                  description="the edge of usable: 512 kbit/s, 400 ms RTT, 5 % loss"),
        symmetric("floor64", rate_kbit=64, rtt_ms=300, loss_pct=5,
                  description="the floor: 64 kbit/s, 300 ms RTT, 5 % loss (room for audio only; audio must survive)"),
        symmetric("outage", rate_kbit=None, rtt_ms=0, loss_pct=0, outage_at_s=5, outage_s=10,
                  description="clean, with a 10 s blackhole 5 s after the start (also: set_outage at run time)"),
        symmetric("outage60", rate_kbit=None, rtt_ms=0, loss_pct=0, outage_at_s=5, outage_s=60,
                  description="clean, with a 60 s blackhole 5 s after the start"),
        replace(symmetric("tcponly", rate_kbit=2000, rtt_ms=100, loss_pct=0,
                          description="a firewall that lets only TCP through: 2 Mbit/s, 100 ms RTT, UDP refused"),
                udp_blocked=True),
    )
}

#: Keys accepted after a profile name: ``poor,rtt_ms=250,loss_pct=3``.
_OVERRIDES = ("rate_kbit", "rtt_ms", "delay_ms", "jitter_ms", "loss_pct", "burst", "queue_ms", "queue_bytes",
              "outage_at_s", "outage_s", "reorder")


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


def _value(key: str, text: str) -> Any:
    if key == "reorder":
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ProfileError(f"reorder must be true or false, not {text!r}")
    if key in ("rate_kbit", "burst", "queue_bytes", "outage_at_s", "outage_s") and text.lower() in ("none", "off", ""):
        return None
    try:
        number = float(text)
    except ValueError:
        raise ProfileError(f"{key} must be a number, not {text!r}") from None
    if key == "queue_bytes":
        if number != int(number):
            raise ProfileError(f"queue_bytes must be an integer, not {text!r}")
        return int(number)
    return number


def override(profile: Profile, **values: Any) -> Profile:
    """``profile`` with overrides (same keys as in a spec string), applied to both directions."""
    for key in values:
        if key not in _OVERRIDES:
            raise ProfileError(f"unknown profile setting {key!r}; known: {', '.join(_OVERRIDES)}")
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key == "rtt_ms":
            _number("rtt_ms", value, maximum=120_000)
            changes["delay_ms"] = value / 2
        elif key == "loss_pct":
            _number("loss_pct", value, maximum=99)
            changes["loss"] = value / 100
        elif key not in ("outage_at_s", "outage_s"):
            changes[key] = value
    result = profile.with_both(**changes) if changes else profile
    if "outage_at_s" in values or "outage_s" in values:
        result = replace(result, outage_at_s=values.get("outage_at_s", result.outage_at_s),
                         outage_s=values.get("outage_s", result.outage_s))
    return result


def parse_profile(spec: str | Profile) -> Profile:
    """A profile from ``name`` or ``name,key=value,...`` (e.g. ``poor,rtt_ms=250``), or a Profile as is."""
    if isinstance(spec, Profile):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ProfileError(f"a profile is a name like {', '.join(PROFILES)}, not {spec!r}")
    name, *pairs = [part.strip() for part in spec.split(",")]
    profile = get_profile(name)
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep:
            raise ProfileError(f"profile setting {pair!r} is not key=value")
        if key not in _OVERRIDES:
            raise ProfileError(f"unknown profile setting {key!r}; known: {', '.join(_OVERRIDES)}")
        values[key] = _value(key, text.strip())
    if values:
        profile = replace(override(profile, **values), name=spec.strip())
    return profile
