"""Configuration section ``[web]``: the HTTP(S) listener and browser-facing settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    #: PEM certificate and key for HTTPS. Browsers only open camera and microphone on https or localhost.
    tls_cert: str = ""
    tls_key: str = ""
    #: Generate (once, in the data directory) a self-signed certificate for a LAN deployment.
    self_signed: bool = False
    #: Extra names/addresses to put in the self-signed certificate.
    self_signed_names: list[str] = field(default_factory=list)
    #: Reverse proxies whose X-Forwarded-For header is believed (addresses).
    trusted_proxies: list[str] = field(default_factory=list)
    #: Largest request body accepted, in bytes.
    max_body_bytes: int = 1_048_576

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert) or self.self_signed

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if not 0 <= self.port <= 65535:  # 0: any free port (tests)
            problems.append(("port", "must be between 1 and 65535"))
        if bool(self.tls_cert) != bool(self.tls_key):
            problems.append(("tls_key" if self.tls_cert else "tls_cert", "tls_cert and tls_key go together"))
        if self.tls_cert and self.self_signed:
            problems.append(("self_signed", "cannot be combined with tls_cert"))
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_address(proxy)
            except ValueError:
                problems.append(("trusted_proxies", f"{proxy!r} is not an IP address"))
        if self.max_body_bytes < 1024:
            problems.append(("max_body_bytes", "must be at least 1024"))
        return problems
