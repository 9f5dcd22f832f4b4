"""The storage alarm on the secretariat's console.

When the disk fills, or the database turns read-only or stays locked (meetings/storage.py), the
moderators of every live room get ``alarm {code, message, since}``; when it clears, ``alarm {code,
cleared: true}``. A console opened while a problem lasts finds it in ``/api/health`` (web/static/js/console.js).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from meetings.services import Services
from meetings.storage import Problem
from signaling.room import Room

log = logging.getLogger("signaling.alarms")
EVENT = "alarm"


def payload(problem: Problem, cleared: bool) -> dict[str, Any]:
    return {"code": problem.code, "cleared": True} if cleared else {**problem.public(), "cleared": False}


class StorageAlarms:
    def __init__(self, services: Services, rooms: Callable[[], Iterable[Room]]) -> None:
        self.rooms = rooms
        self._tasks: set[asyncio.Task[None]] = set()
        services.storage.listeners.append(self.changed)

    def changed(self, problem: Problem, cleared: bool) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving: nobody to tell
        task = loop.create_task(self.tell_moderators(payload(problem, cleared)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def tell_moderators(self, data: dict[str, Any]) -> None:
        for room in list(self.rooms()):
            for moderator in room.moderation.moderators():
                try:
                    await room.outbox.to(moderator, EVENT, data)
                except Exception:  # noqa: BLE001 - one closed socket does not silence the others
                    log.exception("could not send the storage alarm", extra={"event": "signaling.alarm_failed"})
        log.info("storage alarm sent to the consoles", extra={"event": "signaling.alarm", "code": data["code"],
                                                                "cleared": data["cleared"]})
