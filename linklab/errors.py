"""The link lab's one error base class and its precise subclasses."""

from __future__ import annotations


class LinkLabError(Exception):
    """Anything the link lab refuses or fails to do."""


class ProfileError(LinkLabError, ValueError):
    """An unknown profile name or a bad profile value."""


class LabSetupError(LinkLabError):
    """A namespace, TUN device, address or relay could not be set up."""


class RelayError(LinkLabError):
    """The relay process failed, died or answered a control command with an error."""
