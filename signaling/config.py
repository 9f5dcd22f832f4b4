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
        return problems
