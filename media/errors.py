"""The package's single error hierarchy: every error media/ raises on purpose is a MediaError."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by the ``media`` package."""


class InvalidStateError(MediaError):
    """The object is closed, or not in the state the call needs (e.g. no remote offer yet)."""


class NotFoundError(MediaError):
    """An id (producer, slot, transport, m-line) given by the caller is unknown."""


class NegotiationError(MediaError):
    """An SDP offer/answer could not be applied or produced."""


class UnsupportedError(MediaError):
    """The request needs something this SFU does not do (e.g. an unforwardable codec)."""


class SeamError(MediaError):
    """An aiortc internal that media/aiortc_seams.py relies on is missing or changed."""
