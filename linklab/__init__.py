"""The link lab: emulated provincial links (delay, jitter, loss, bursts, rate limits, outages) for
sites living in their own network namespaces behind a userspace impairment relay."""

from .errors import LabSetupError, LinkLabError, ProfileError, RelayError
from .lab import SERVER_ADDRESS, Lab, Site, check_privileges
from .profiles import PROFILES, LinkSpec, Profile, get_profile, override, parse_profile

__all__ = [
    "PROFILES", "SERVER_ADDRESS", "LabSetupError", "Lab", "LinkLabError", "LinkSpec", "Profile", "ProfileError",
    "RelayError", "Site", "check_privileges", "get_profile", "override", "parse_profile",
]
