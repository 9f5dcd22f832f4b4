"""Errors of provincial_nodes/: one base class, precise subclasses."""

from __future__ import annotations


class NodeError(Exception):
    """Base class of every error raised by provincial_nodes/."""


class SnapshotError(NodeError):
    """The centre's office snapshot is malformed; the node's copy is left as it was."""


class ControlRefused(NodeError):
    """The centre refused the node's credential (unknown, revoked, its office inactive)."""


class UploadError(NodeError):
    """Uploading a recording to the centre did not finish (a cut, the centre busy or out of disk, an answer
    that makes no sense); the uploader tries again from what the centre holds."""


class UploadRefused(UploadError):
    """The centre refused a recording itself (``status``: 400, 404 for a meeting the node may not carry, 409
    for files that do not match their manifest): retrying at once would be refused again."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class UploadStopped(NodeError):
    """The uploader was asked to stop between two chunks."""
