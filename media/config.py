"""Configuration section ``[media]``: the SFU's network settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class MediaConfig:
    #: STUN/TURN server URLs handed to aiortc. Empty: no external server is contacted.
    ice_servers: list[str] = field(default_factory=list)
    #: Username/credential for TURN servers in ``ice_servers`` (coturn time-limited credentials later).
    turn_username: str = ""
    turn_credential: str = ""
    #: Addresses announced as host candidates in addition to what aioice gathers
    #: (e.g. a public address behind 1:1 NAT, or 127.0.0.1 for loopback tests).
    announced_addresses: list[str] = field(default_factory=list)
    #: Default number of videos forwarded to each subscriber (last-N).
    last_n: int = 9
    #: How long the server keeps forwarded packets for retransmission, in milliseconds.
    rtx_history_ms: int = 1500
    #: Restrict host candidates to these local addresses (empty: every interface, aioice's
    #: default). Loopback tests use ``["127.0.0.1"]`` so nothing but loopback is offered.
    ice_bind_addresses: list[str] = field(default_factory=list)
    #: At most one keyframe request (PLI) per producer per this many milliseconds.
    pli_throttle_ms: int = 500
    #: How long a new voice must dominate before it takes the stage (dominant speaker).
    speaker_switch_ms: int = 1000
    #: Interval of the server's RTCP reports (receiver reports upstream, sender reports down).
    rtcp_interval_ms: int = 1000
    #: Kernel receive/send buffer asked for on each ICE socket (0: the system default). Large
    #: buffers ride out the moments the event loop is busy (e.g. negotiating a large session).
    socket_buffer_bytes: int = 4 * 1024 * 1024
    #: A site's bandwidth budget (media/site_budget.py): the share of its downlink estimate spent,
    #: the estimate before the first feedback, and how long the link must be quiet before a step up.
    budget_share: float = 0.85
    #: False: no budget at all, every slot forwards every layer whatever the link (a LAN-only
    #: deployment, or a load test whose receivers lose packets to their own CPU, not to a link).
    budget_enabled: bool = True
    budget_start_kbps: int = 600
    budget_up_after_ms: int = 5000

    def validate(self) -> list[tuple[str, str]]:
        """Return ``(key, problem)`` pairs; empty when the section is valid."""
        problems: list[tuple[str, str]] = []
        for url in self.ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                problems.append(("ice_servers", f"{url!r} is not a stun:, turn: or turns: URL"))
        if not 1 <= self.last_n <= 64:
            problems.append(("last_n", "must be between 1 and 64"))
        if not 1000 <= self.rtx_history_ms <= 10000:
            problems.append(("rtx_history_ms", "must be between 1000 and 10000"))
        if not 50 <= self.pli_throttle_ms <= 10000:
            problems.append(("pli_throttle_ms", "must be between 50 and 10000"))
        if not 200 <= self.speaker_switch_ms <= 10000:
            problems.append(("speaker_switch_ms", "must be between 200 and 10000"))
        if not 100 <= self.rtcp_interval_ms <= 10000:
            problems.append(("rtcp_interval_ms", "must be between 100 and 10000"))
        if not 0.1 <= self.budget_share <= 1.0:
            problems.append(("budget_share", "must be between 0.1 and 1"))
        if not 30 <= self.budget_start_kbps <= 50000:
            problems.append(("budget_start_kbps", "must be between 30 and 50000"))
        if not 1000 <= self.budget_up_after_ms <= 60000:
            problems.append(("budget_up_after_ms", "must be between 1000 and 60000"))
        if not (self.socket_buffer_bytes == 0 or 65536 <= self.socket_buffer_bytes <= 64 * 1024 * 1024):
            problems.append(("socket_buffer_bytes", "must be 0 or between 65536 and 67108864"))
        for key, addresses in (
            ("announced_addresses", self.announced_addresses),
            ("ice_bind_addresses", self.ice_bind_addresses),
        ):
            for address in addresses:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    problems.append((key, f"{address!r} is not an IP address"))
        return problems
