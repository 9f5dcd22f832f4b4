"""Configuration section ``[signaling]``: socket.io limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignalingConfig:
    #: Largest socket.io message accepted, in bytes (SDP included; a 50-site answer has ~100 m-lines).
    max_message_bytes: int = 262_144
    #: Sustained messages per second per connection, and the burst allowed above it.
    rate_per_second: float = 20.0
    rate_burst: int = 40
    #: Refused messages in a row after which a flooding client is disconnected (see signaling/ratelimit.py).
    flood_disconnect_after: int = 100
    #: Engine.io pings every connection this often; the pong is evidence of life (signaling/liveness.py).
    ping_interval_seconds: float = 3.0
    #: Engine.io's own cut-off for a missing pong (a fallback: the liveness sweep acts first).
    ping_timeout_seconds: float = 10.0
    #: A joined connection silent this long (no message, pong, RTP or RTCP) is dropped, its attendance
    #: ending at its last evidence of life. The sweep runs every 0.5 s: noticed within this + 0.5 s.
    dead_after_seconds: float = 8.0

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not 1024 <= self.max_message_bytes <= 1_048_576:
            problems.append(("max_message_bytes", "must be between 1024 and 1048576"))
        if self.rate_per_second <= 0:
            problems.append(("rate_per_second", "must be positive"))
        if self.rate_burst < 1:
            problems.append(("rate_burst", "must be at least 1"))
        if self.flood_disconnect_after < 1:
            problems.append(("flood_disconnect_after", "must be at least 1"))
        if not 1 <= self.ping_interval_seconds <= 25:
            problems.append(("ping_interval_seconds", "must be between 1 and 25"))
        if not 1 <= self.ping_timeout_seconds <= 60:
            problems.append(("ping_timeout_seconds", "must be between 1 and 60"))
        if not self.ping_interval_seconds + 2 <= self.dead_after_seconds <= 60:
            problems.append(("dead_after_seconds", "must be between ping_interval_seconds + 2 and 60"))
        return problems
