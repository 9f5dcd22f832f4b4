"""Start-up and upkeep of the storage safeguards: the attendance journal's replay and reservation, and the
probe of free space that feeds /api/health and the console's alarm (meetings/storage.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from meetings.errors import StorageError
from meetings.services import Services
from meetings.services.attendance_journal import replay

log = logging.getLogger("cabinet.storage")

#: How often the free space is probed (and a reservation that failed is tried again).
PROBE_SECONDS = 2.0


async def replay_attendance_journal(services: Services) -> None:
    """Open the journal and write what a crash left in it into the database. Run at start, before any
    connection is accepted and before ``recover_crashed``. If the database still refuses it (the disk is
    still full), the journal is kept for the next start and the server starts anyway."""
    journal = services.attendance_journal
    if journal is None:
        return
    try:
        journal.open()
    except OSError as exc:
        log.error("cannot open the attendance journal", extra={
            "event": "attendance_journal.open_failed", "file": str(journal.path), "error": exc.strerror or str(exc)})
        return
    try:
        counts = await replay(services.db, journal)
    except StorageError as exc:
        log.error("cannot replay the attendance journal now; it is kept for the next start", extra={
            "event": "attendance_journal.replay_failed", "error": exc.message})
        return
    if counts["added"] or counts["merged"]:
        log.warning("replayed the attendance journal: %d intervals added, %d merged", counts["added"],
                    counts["merged"], extra={"event": "attendance_journal.replayed", **counts})


def watch_storage(app: web.Application, services: Services) -> None:
    """Probe the free space every ``PROBE_SECONDS`` while the app runs."""
    tasks: list[asyncio.Task[None]] = []

    async def probe_forever() -> None:
        while True:
            try:
                services.storage.probe()
                if services.attendance_journal is not None:
                    if not any(p.code == "disk_full" for p in services.storage.problems()):
                        services.attendance_journal.reserve()
            except Exception:  # noqa: BLE001 - the probe never stops
                log.exception("storage probe failed", extra={"event": "storage.probe_failed"})
            await asyncio.sleep(PROBE_SECONDS)

    async def start(_app: web.Application) -> None:
        services.storage.probe()
        tasks.append(asyncio.create_task(probe_forever()))

    async def stop(_app: web.Application) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if services.attendance_journal is not None:
            services.attendance_journal.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
