"""Errors of provincial_nodes/: one base class, precise subclasses."""

from __future__ import annotations


class NodeError(Exception):
    """Base class of every error raised by provincial_nodes/."""


class SnapshotError(NodeError):
    """The centre's office snapshot is malformed; the node's copy is left as it was."""


class ControlRefused(NodeError):
    """The centre refused the node's credential (unknown, revoked, its office inactive)."""
