"""Signed checkpoints of the audit chain's head, kept outside the database.

A checkpoint is one line of text that can travel anywhere (a file, a log, printed minutes)::

    cabinet-audit-checkpoint v1 seq=812 hash=<64 hex> at=2026-11-26T15:00:00Z mac=<64 hex>

``mac`` is HMAC-SHA256 over ``v1|seq|hash|at`` with a key derived from the server's secret key. The
server writes one after every commit that appends to the chain, to a file in the checkpoint directory
and to the log; approved minutes carry the checkpoint of the moment they were approved. ``cabinet
audit verify`` reads them back and checks that the chain reaches each with the same hash, which is
what catches rows dropped from the end together with the head moved back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

log = logging.getLogger("cabinet.audit")

VERSION = "v1"
FILE_NAME = "audit-checkpoints.log"
PATTERN = re.compile(
    r"cabinet-audit-checkpoint v1 seq=(\d{1,15}) hash=([0-9a-f]{64}) "
    r"at=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) mac=([0-9a-f]{64})"
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: dt.datetime
    mac: str
    #: Where it was read from (for the report), e.g. a file name and line.
    source: str = ""

    @property
    def at_text(self) -> str:
        return self.at.astimezone(dt.UTC).strftime(_TIME_FORMAT)

    def text(self) -> str:
        return f"cabinet-audit-checkpoint {VERSION} seq={self.seq} hash={self.hash} at={self.at_text} mac={self.mac}"


def scan(text: str, source: str) -> list[Checkpoint]:
    """Every checkpoint written anywhere in ``text`` (a log, a checkpoint file, exported minutes)."""
    found = []
    for match in PATTERN.finditer(text):
        seq, digest, at, mac = match.groups()
        try:
            when = dt.datetime.strptime(at, _TIME_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        line = text.count("\n", 0, match.start()) + 1
        found.append(Checkpoint(int(seq), digest, when, mac, f"{source}:{line}"))
    return found


def scan_file(path: Path) -> list[Checkpoint]:
    """Read a file line by line (logs can be large) and collect its checkpoints."""
    found: list[Checkpoint] = []
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if "cabinet-audit-checkpoint" in line:
                found.extend(replace(c, source=f"{path}:{number}") for c in scan(line, str(path)))
    return found


class CheckpointSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, seq: int, digest: str, at_text: str) -> str:
        message = f"{VERSION}|{seq}|{digest}|{at_text}".encode("ascii")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, seq: int, digest: str, at: dt.datetime | None = None) -> Checkpoint:
        when = (at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        unsigned = Checkpoint(seq, digest, when, "")
        return replace(unsigned, mac=self._mac(seq, digest, unsigned.at_text))

    def valid(self, checkpoint: Checkpoint) -> bool:
        return hmac.compare_digest(self._mac(checkpoint.seq, checkpoint.hash, checkpoint.at_text), checkpoint.mac)


class CheckpointFile:
    """An append-only file of checkpoints, one line each, in a directory other than the database's."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    def append(self, checkpoint: Checkpoint) -> None:
        """One ``write`` of one line with O_APPEND, so writers in several processes never interleave."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (checkpoint.text() + "\n").encode("ascii"))
        finally:
            os.close(fd)

    def read(self) -> list[Checkpoint]:
        return scan_file(self.path) if self.path.exists() else []

