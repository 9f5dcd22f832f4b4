"""Configuration section ``[provincial_nodes]``: this process as an edge node of a province or command."""

from __future__ import annotations

from dataclasses import dataclass

from media.pipe_budget import MAX_CAP_KBPS, MIN_CAP_KBPS, valid_cap


@dataclass(frozen=True)
class ProvincialNodesConfig:
    #: Empty: this process is the central server. Otherwise the URL of the upstream server.
    upstream_url: str = ""
    #: Office code of the province or command this node serves.
    office_code: str = ""
    #: File holding the node's credential (``cabinet nodes add --credential-file`` on the centre writes it).
    credential_file: str = ""
    #: Disk the node's recordings may use, in MiB (0: no quota). Beyond it the oldest recordings the centre
    #: has already sealed are deleted on the node (a tombstone stays); one not yet uploaded is never deleted.
    recordings_quota_mb: int = 0
    #: The node's link to the centre, kbit/s (0: no cap): what the centre sends it is thinned to fit
    #: ``downlink_kbps`` (the node tells it), what it sends the centre to fit ``uplink_kbps``: audio
    #: whole, every camera's base layer, then upper temporal layers (media/pipe_budget.py).
    downlink_kbps: int = 0
    uplink_kbps: int = 0

    def validate(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.upstream_url and not self.upstream_url.startswith(("https://", "http://")):
            problems.append(("upstream_url", "must be an http(s) URL"))
        if self.upstream_url and not self.office_code:
            problems.append(("office_code", "is required when upstream_url is set"))
        if self.upstream_url and not self.credential_file:
            problems.append(("credential_file", "is required when upstream_url is set"))
        if not 0 <= self.recordings_quota_mb <= 1_073_741_824:
            problems.append(("recordings_quota_mb", "must be between 0 (no quota) and 1073741824 (1 PiB)"))
        for name in ("downlink_kbps", "uplink_kbps"):
            if not valid_cap(getattr(self, name)):
                problems.append((name, f"must be 0 (no cap) or between {MIN_CAP_KBPS} and {MAX_CAP_KBPS} kbit/s"))
        return problems
