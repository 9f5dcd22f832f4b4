"""Node mode inside the server process: the control channel to the centre, started and stopped with the app.

The credential is read from ``[provincial_nodes] credential_file`` at start (a file readable by others
is refused: it is the office's key to the centre). Each snapshot is checked to be of the configured
office before it replaces the node's copy (provincial_nodes/replica.py): a credential of another office
pasted by mistake must not fill this node with someone else's accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import stat
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any

from aiohttp import web

from sqlalchemy import select

from meetings.models import Office
from meetings.services import Services
from signaling.room import Room
from signaling.server import Rooms

from .config import ProvincialNodesConfig
from .control import ControlClient
from .errors import NodeError, SnapshotError
from .local_recordings import NodeArchive
from .node_pipes import NodePipes
from .quota import RecordingsQuota
from .replica import apply_snapshot
from .upload import RecordingUploader, ledger_path

log = logging.getLogger("provincial_nodes.uplink")

UPLINK: web.AppKey[Uplink] = web.AppKey("node_uplink")


def read_credential(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"cannot read the node credential file {path}: {exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NodeError(f"the node credential file {path} is readable by others: chmod 600 it")
    if not text:
        raise NodeError(f"the node credential file {path} is empty")
    return text


class Uplink:
    def __init__(self, services: Services, config: ProvincialNodesConfig, rooms: Rooms, *,
                 archive_root: Path | None = None, data_dir: Path | None = None) -> None:
        self.services = services
        self.config = config
        self.pipes = NodePipes(rooms, urlsplit(config.upstream_url).hostname or "",
                               downlink_kbps=config.downlink_kbps, uplink_kbps=config.uplink_kbps)
        self.client = ControlClient(config.upstream_url, read_credential(Path(config.credential_file)),
                                    self._on_snapshot, listener=self.pipes)
        self._task: asyncio.Task[None] | None = None
        self.uploader = recording_uploader(services, config, archive_root, data_dir)
        if self.uploader is not None:
            rooms.listeners.append(self)

    # -- rooms (signaling/server.py RoomListener): a sealed recording goes up at once, not at the next scan --
    def room_opened(self, room: Room) -> None:
        if self.uploader is not None:
            uploader = self.uploader
            room.recording.on_sealed = lambda _recording_id: uploader.wake()

    def room_closed(self, room: Room) -> None:
        return None

    async def _on_snapshot(self, snapshot: dict[str, Any]) -> None:
        office = snapshot.get("office") if isinstance(snapshot, dict) else None
        code = office.get("code") if isinstance(office, dict) else None
        if code != self.config.office_code:
            raise SnapshotError(f"the centre sent office {code!r}; this node serves {self.config.office_code!r}")
        result = await apply_snapshot(self.services.db, snapshot)
        self.pipes.office_id = office.get("id") if isinstance(office.get("id"), int) else None
        log.info("office copy refreshed", extra={"event": "node.replica", "office": result.office_code,
                                                 "people_created": result.created, "people_updated": result.updated,
                                                 "people_deactivated": result.deactivated, "meetings": result.meetings})

    async def start(self) -> None:
        async with self.services.db.read() as session:  # the copy of an earlier run, before the centre answers
            self.pipes.office_id = await session.scalar(select(Office.id).where(Office.code == self.config.office_code))
        self._task = asyncio.create_task(self.client.run(), name="node-uplink")
        self._task.add_done_callback(self._ended)
        if self.uploader is not None:
            self.uploader.start()

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # never silently: the node is cut off
            log.critical("the node's uplink stopped: %s", task.exception(), exc_info=task.exception(),
                         extra={"event": "node.uplink_failed"})

    async def stop(self) -> None:
        if self.uploader is not None:
            await self.uploader.stop()
        await self.client.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)


# -- the node's recordings to the centre (provincial_nodes/upload.py), beside the channel -------------------

def recording_uploader(services: Services, config: ProvincialNodesConfig, archive_root: Path | None,
                       data_dir: Path | None) -> RecordingUploader | None:
    """The uploader of the node's recordings, with its disk quota; None where the node keeps no archive."""
    if archive_root is None or data_dir is None:
        return None
    archive = NodeArchive(services, archive_root)
    quota = RecordingsQuota(archive, config.recordings_quota_mb * 2**20) if config.recordings_quota_mb else None
    return RecordingUploader(config.upstream_url, read_credential(Path(config.credential_file)), archive,
                             ledger_path(data_dir), quota=quota)


def install(app: web.Application, services: Services, config: ProvincialNodesConfig, rooms: Rooms, *,
            archive_root: Path | None = None, data_dir: Path | None = None) -> None:
    """Run the node's uplink (control channel, media pipe and, with an archive, the recordings' upload) for as
    long as the application runs."""
    uplink = app[UPLINK] = Uplink(services, config, rooms, archive_root=archive_root, data_dir=data_dir)

    async def start(_app: web.Application) -> None:
        await uplink.start()

    async def stop(_app: web.Application) -> None:
        await uplink.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
