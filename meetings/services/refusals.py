"""Refusals on protected objects, counted in memory and written to the audit trail once per period.

A 403 or 404 on a meeting, document, the people or audit pages, a refused CSRF token of a logged-in
user, a refused signaling action or join token, a provincial node's refused credential: each says
someone reached for something they may not have. One row per refusal would let a prober fill the audit
table, so ``RefusalLog.note`` only counts, keyed by (actor, address, kind, target); ``flush`` (every
``period_seconds`` while the server runs, and at stop) writes one ``access.refused`` event per key and
period through ``Database.write()``, so the rows are hash-chained like every other event. Memory is
bounded: at most ``max_keys`` keys per period; past that, a caller's further refusals are counted into
one overflow key per (actor, address), and when those slots are full too, into a single catch-all key.

What is recorded is what the caller was answered (a hidden meeting answers 404 like a missing one, and
is recorded as ``not_found`` the same way), plus the target id they asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from meetings.db import Database
from meetings.policy import Caller

log = logging.getLogger("meetings.refusals")

ACTION = "access.refused"
KINDS = frozenset({"forbidden", "not_found", "csrf", "signaling", "node_credential"})
#: The catch-all's and every overflow key's target type.
OVERFLOW = "overflow"
#: Routes kept per key (each at most ROUTE_LENGTH characters): enough to see what was probed.
MAX_ROUTES = 5
ROUTE_LENGTH = 120
#: Events per write transaction, so a full flush does not hold the write lock for long.
BATCH = 100

#: (actor_id, actor_office_id, address, kind, target_type, target_id)
Key = tuple[int | None, int | None, str, str, str, str]


@dataclass
class Tally:
    count: int
    first_at: dt.datetime
    last_at: dt.datetime
    routes: list[str] = field(default_factory=list)
    #: Overflow keys only: how many refusals of each kind they absorbed.
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, now: dt.datetime, route: str, kind: str, *, overflow: bool) -> None:
        self.count += 1
        self.last_at = now
        if route and route not in self.routes and len(self.routes) < MAX_ROUTES:
            self.routes.append(route)
        if overflow:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class RefusalLog:
    """Counts refusals per (actor, address, kind, target) and writes one audit event per key per period."""

    def __init__(self, db: Database, *, period_seconds: float = 60.0, max_keys: int = 1000) -> None:
        if max_keys < 3:
            raise ValueError("max_keys must be at least 3")
        self.db = db
        self.period_seconds = period_seconds
        self.max_keys = max_keys
        #: Keys kept for overflow per (actor, address); the last of them is the catch-all.
        self.overflow_slots = max(2, max_keys // 10)
        self._tallies: dict[Key, Tally] = {}
        self._overflow: dict[Key, Tally] = {}
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    @property
    def pending_keys(self) -> int:
        return len(self._tallies) + len(self._overflow)

    def note(self, caller: Caller, kind: str, *, target_type: str, target_id: str | int = "",
             route: str = "", actor_id: int | None = None, actor_office_id: int | None = None) -> None:
        """Count one refusal (cheap and synchronous: no I/O on the refused request's path).

        The actor is the caller's principal; ``actor_id``/``actor_office_id`` name it when there is no
        Caller with a principal (a signed join token of a connection that was refused)."""
        if kind not in KINDS:
            raise ValueError(f"unknown refusal kind {kind!r}")
        if caller.system:
            return
        if caller.principal is not None:
            actor_id, actor_office_id = caller.actor_id, caller.office_id
        address = caller.address[:64]
        now = dt.datetime.now(dt.UTC)
        route = route[:ROUTE_LENGTH]
        key: Key = (actor_id, actor_office_id, address, kind, target_type[:32], str(target_id)[:64])
        tally = self._tallies.get(key)
        if tally is None and len(self._tallies) < self.max_keys - self.overflow_slots:
            tally = self._tallies[key] = Tally(0, now, now)
        if tally is not None:
            tally.add(now, route, kind, overflow=False)
            return
        key = (actor_id, actor_office_id, address, OVERFLOW, "", "")
        tally = self._overflow.get(key)
        if tally is None:
            if len(self._overflow) >= self.overflow_slots - 1:
                key = (None, None, "", OVERFLOW, "", "")  # the catch-all: every address past the slots
                tally = self._overflow.get(key)
            if tally is None:
                tally = self._overflow[key] = Tally(0, now, now)
        tally.add(now, route, kind, overflow=True)

    async def flush(self) -> int:
        """Write one audit event per key counted since the last flush; return how many were written."""
        async with self._flushing:
            taken = [*self._tallies.items(), *self._overflow.items()]
            self._tallies, self._overflow = {}, {}
            written = 0
            for start in range(0, len(taken), BATCH):
                batch = taken[start:start + BATCH]
                try:
                    async with self.db.write() as uow:
                        for key, tally in batch:
                            actor_id, office_id, address, kind, target_type, target_id = key
                            uow.audit(ACTION, actor_id=actor_id, actor_office_id=office_id, address=address,
                                      target_type=target_type, target_id=target_id,
                                      details=self._details(kind, tally))
                except Exception:
                    log.exception("could not write refusals to the audit trail",
                                  extra={"event": "refusals.flush_failed",
                                         "lost": sum(t.count for _, t in taken[start:])})
                    break
                written += len(batch)
            return written

    @staticmethod
    def _details(kind: str, tally: Tally) -> dict[str, Any]:
        details: dict[str, Any] = {"kind": kind, "count": tally.count, "first_at": _iso(tally.first_at),
                                   "last_at": _iso(tally.last_at), "routes": tally.routes}
        if kind == OVERFLOW:
            details["kinds"] = dict(sorted(tally.kinds.items()))
            details["note"] = "refusals past the per-period key limit, counted together"
        return details

    # -- the periodic flush, run with the server ------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="refusal-log-flush")

    async def stop(self) -> None:
        """Stop the periodic flush and write what is still counted."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period_seconds)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - logged; the next period tries again
                log.exception("refusal flush failed", extra={"event": "refusals.flush_failed"})
