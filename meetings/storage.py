"""The health of the server's storage: a full disk, a read-only or a locked database.

``StorageMonitor`` learns of every write's outcome from ``Database`` (``Database.observers``: None when a
write committed, else the ``StorageError`` that refused it; document uploads report ENOSPC the same way)
and probes the free space of the data directory (and of the SQLite database's directory). It answers
``problems()`` for ``/api/health`` and tells its listeners when a problem appears or clears (signaling
turns that into the ``alarm`` event on the secretariat's console).

When a problem counts:

- ``disk_full``: the data directory has less than ``low_space_bytes`` free, or a write failed for lack of
  space and nothing has been written since (the probe finding space again also clears it when the
  probed directory holds the SQLite database: the failure was of that disk).
- ``read_only``: a write was refused because the database is read-only, until a write succeeds.
- ``busy``: a write gave up waiting for another process's lock within the last ``busy_window`` seconds,
  and no write has succeeded since.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from meetings.errors import DatabaseBusy, DatabaseReadOnly, DiskFull, StorageError

log = logging.getLogger("meetings.storage")

DISK_FULL_MESSAGE = "the server's disk is full; nothing was saved. Tell the administrator"
#: The messages of the problems, as the console and /api/health show them.
MESSAGES = {
    "disk_full": "the server's disk is full: new records cannot be saved. Free space on the server",
    "read_only": "the database is read-only: new records cannot be saved. Tell the administrator",
    "busy": "the database is locked by another program: records are saved late or not at all",
}
#: Below this much free space the disk counts as full (SQLite, the journal and uploads need room).
LOW_SPACE_BYTES = 8 * 1024 * 1024
#: A lock that made a write give up counts this long (unless a write succeeds before).
BUSY_WINDOW_SECONDS = 60.0
#: errno values that mean "no room on this file system" (ENOSPC; EDQUOT: the user's quota).
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def disk_full() -> DiskFull:
    return DiskFull(DISK_FULL_MESSAGE)


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    since: float  # time.time()

    def public(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "since": round(self.since, 3)}


#: A listener gets the problem that appeared (``cleared`` False) or went away (``cleared`` True).
Listener = Callable[[Problem, bool], None]


class StorageMonitor:
    def __init__(self, paths: Iterable[Path] = (), *, database_dir: Path | None = None,
                 low_space_bytes: int = LOW_SPACE_BYTES, busy_window: float = BUSY_WINDOW_SECONDS) -> None:
        #: Directories whose free space is probed (missing ones are skipped).
        self.paths = [Path(p) for p in paths]
        #: The SQLite database's directory, when it is one of ``paths`` (its space is the database's).
        self.database_dir = database_dir
        self.low_space_bytes = low_space_bytes
        self.busy_window = busy_window
        self.listeners: list[Listener] = []
        self._failed: dict[str, float] = {}  # code -> time of the last failure since the last success
        self._low_space = False
        self._active: dict[str, Problem] = {}

    # -- what happens -------------------------------------------------------------------------
    def write_outcome(self, outcome: StorageError | None) -> None:
        """``Database.observers`` callback: a write committed (None) or was refused."""
        if outcome is None:
            if self._failed:
                self._failed.clear()
                self._update()
            return
        code = _code(outcome)
        if code is None:
            return
        self._failed[code] = time.time()
        if code == "disk_full":
            self._low_space = self._probe_low()
        self._update()

    def no_space(self, exc: OSError) -> DiskFull:
        """A file write failed with ENOSPC: the domain error to raise (and the problem is noted)."""
        error = disk_full()
        self.write_outcome(error)
        return error

    def probe(self) -> None:
        """Look at the free space again (every few seconds, and on each health request)."""
        self._low_space = self._probe_low()
        if not self._low_space and "disk_full" in self._failed and self._database_probed():
            del self._failed["disk_full"]  # the failure was of this disk, and it has room again
        self._update()

    # -- what is known ------------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        self._update()
        return sorted(self._active.values(), key=lambda p: p.since)

    def free_bytes(self) -> int | None:
        free: int | None = None
        for path in self.paths:
            try:
                stat = os.statvfs(path)
            except OSError:
                continue
            space = stat.f_bavail * stat.f_frsize
            free = space if free is None else min(free, space)
        return free

    # -- internals ----------------------------------------------------------------------------
    def _probe_low(self) -> bool:
        free = self.free_bytes()
        return free is not None and free < self.low_space_bytes

    def _database_probed(self) -> bool:
        return self.database_dir is not None and any(
            _same_filesystem(self.database_dir, p) for p in self.paths)

    def _update(self) -> None:
        now = time.time()
        busy_at = self._failed.get("busy")
        if busy_at is not None and now - busy_at > self.busy_window:
            del self._failed["busy"]
        wanted: dict[str, float] = {}
        if self._low_space or "disk_full" in self._failed:
            wanted["disk_full"] = self._failed.get("disk_full", now)
        for code in ("read_only", "busy"):
            if code in self._failed:
                wanted[code] = self._failed[code]
        raised = [Problem(code, MESSAGES[code], since) for code, since in wanted.items() if code not in self._active]
        cleared = [p for code, p in self._active.items() if code not in wanted]
        for problem in raised:
            self._active[problem.code] = problem
            log.error("storage problem: %s", problem.message,
                      extra={"event": "storage.problem", "code": problem.code, "free_bytes": self.free_bytes()})
        for problem in cleared:
            del self._active[problem.code]
            log.warning("storage problem cleared: %s", problem.code,
                        extra={"event": "storage.cleared", "code": problem.code})
        for problem, gone in [(p, False) for p in raised] + [(p, True) for p in cleared]:
            for listener in list(self.listeners):
                try:
                    listener(problem, gone)
                except Exception:  # noqa: BLE001 - a listener never breaks a write
                    log.exception("storage listener failed", extra={"event": "storage.listener_failed"})


def _code(error: StorageError) -> str | None:
    if isinstance(error, DiskFull):
        return "disk_full"
    if isinstance(error, DatabaseReadOnly):
        return "read_only"
    if isinstance(error, DatabaseBusy):
        return "busy"
    return None


def _same_filesystem(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False
