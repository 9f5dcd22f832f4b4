"""The room's recording: policy (from opening to closing, pauses for in-camera items), the rows,
the alarm, and the banner every participant sees.

The media side is :class:`recordings.session.SessionRecorder` (files, journal, manifest); the
rows, permissions and audit are :class:`meetings.services.recordings.RecordingService`'s. This
module joins them for one live room:

- the session opens (or the room comes back while the session is open, after a restart): a new
  recording starts, unless the meeting is not to be recorded;
- a moderator pauses and resumes (the reason goes into the manifest and the audit trail);
- the session closes or the room closes: the files are finalised, the manifest written (with the
  session's record: chapters, speakers, decisions) and its SHA-256 sealed in the audit chain;
- a write error: the file stops, the alarm goes to the moderators' consoles and the log; the
  session goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meetings.errors import Conflict, MeetingsError
from meetings.policy import Caller
from recordings.errors import RecordingError
from recordings.manifest import assemble, write_manifest
from recordings.session import SessionRecorder, TrackOwner

if TYPE_CHECKING:
    from meetings.services import Services
    from signaling.room import Room

log = logging.getLogger("signaling.recording")
SERVER = Caller(principal=None, address="server", system=True)
#: The recorder's id among the router's subscribers (never a participant id: those start with "p").
RECORDER_ID = "recorder"
#: How often the archive's quota is checked while recording.
QUOTA_CHECK_S = 15.0


class RoomRecording:
    def __init__(self, room: Room, services: Services, archive_root: Path | None) -> None:
        self.room = room
        self.services = services
        self.archive_root = archive_root
        self.recorder: SessionRecorder | None = None
        self.recording_id: int | None = None
        self.alarm = ""
        #: Told each recording's id once it is sealed (a provincial node's uploader: send it now).
        self.on_sealed: Callable[[int], None] | None = None
        self._lock = asyncio.Lock()

    # -- state for the pages ----------------------------------------------------------------

    @property
    def state(self) -> str:
        """"recording", "paused" or "off"."""
        if self.recorder is None:
            return "off"
        return "paused" if self.recorder.paused else "recording"

    def payload(self) -> dict[str, Any]:
        return {"state": self.state, "recording_id": self.recording_id, "alarm": self.alarm}

    async def _announce(self) -> None:
        await self.room.outbox.broadcast(self.room, "recording", self.payload())

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, caller: Caller = SERVER) -> None:
        """Start recording (the session is open). No archive configured, or a meeting not to be
        recorded: nothing happens."""
        if self.archive_root is None:
            return
        async with self._lock:
            if self.recorder is not None:
                return
            try:
                recording = await self.services.recordings.start(caller, self.room.meeting_id)
            except Conflict as exc:  # not open, or not to be recorded
                log.info("meeting %s is not recorded: %s", self.room.meeting_id, exc)
                return
            if recording is None:
                return
            recorder = SessionRecorder(
                self.room.router,
                self.archive_root / recording.key,
                owner_of=self._owner_of,
                on_alarm=self._on_alarm,
                meta={"meeting_id": self.room.meeting_id, "recording_id": recording.id, "key": recording.key},
                subscriber_id=RECORDER_ID,
            )
            try:
                recorder.start()
            except RecordingError as exc:
                await self._fail(recording.id, str(exc))
                return
            self.recorder, self.recording_id = recorder, recording.id
            self.update_stage()
            self.room._spawn(self._watch_quota(recorder))
        await self._announce()

    async def stop(self, caller: Caller = SERVER) -> None:
        """Stop recording now, then finalise, write and seal the manifest and close the row. Never
        raises: a failure is the recording's alarm, not the session's (closing the session goes on)."""
        async with self._lock:
            recorder, recording_id = self.recorder, self.recording_id
            if recorder is None or recording_id is None:
                return
            self.recorder = None
            try:
                await self._seal(caller, recorder, recording_id)
            except (OSError, RecordingError, MeetingsError) as exc:
                await self._fail(recording_id, f"the recording could not be sealed: {exc}")
            except Exception as exc:  # noqa: BLE001 - the session must close whatever happens here
                log.exception("recording %s could not be sealed", recording_id)
                await self._fail(recording_id, f"the recording could not be sealed: {type(exc).__name__}")
        await self._announce()

    async def _seal(self, caller: Caller, recorder: SessionRecorder, recording_id: int) -> None:
        files = await recorder.close()
        origin = recorder.state.started_utc if recorder.state is not None else None
        record = await self.services.recordings.session_record(SERVER, recording_id, origin)
        manifest = await asyncio.to_thread(
            assemble, recorder.directory, record, stats=recorder.feed_stats())
        sha = await asyncio.to_thread(write_manifest, recorder.directory, manifest)
        size = sum(f.path.stat().st_size for f in files if f.path.exists())
        await self.services.recordings.register_files(SERVER, recording_id, manifest)
        await self.services.recordings.close(caller, recording_id,
                                             manifest_sha256=sha, size_bytes=size,
                                             duration_ms=int(manifest["duration_ms"]))
        log.info("recording %s sealed: %d files, %d bytes, manifest %s", recording_id, len(files), size, sha,
                 extra={"event": "recording.sealed", "recording_id": recording_id})
        if self.on_sealed is not None:
            self.on_sealed(recording_id)

    def stop_soon(self, caller: Caller = SERVER) -> None:
        """The session closed: stop at once, seal in the background (hashing a long session's files
        takes a while; the moderators' close must not wait for it)."""
        if self.recorder is not None:
            self.recorder.stop_media()
            self.room._spawn(self.stop(caller))

    async def pause(self, caller: Caller, reason: str) -> None:
        if self.recorder is None or self.recording_id is None:
            raise Conflict("the session is not being recorded")
        await self.services.recordings.pause(caller, self.recording_id, reason)
        self.recorder.pause(reason)
        await self._announce()

    async def resume(self, caller: Caller) -> None:
        if self.recorder is None or self.recording_id is None:
            raise Conflict("the session is not being recorded")
        await self.services.recordings.resume(caller, self.recording_id)
        self.recorder.resume()
        await self._announce()

    # -- quota ----------------------------------------------------------------------------------

    async def _watch_quota(self, recorder: SessionRecorder) -> None:
        """While recording: warn the moderators at the archive's warning level, and stop recording (the
        session goes on) when the quota is reached."""
        warned = False
        while self.recorder is recorder:
            try:
                used, quota = await self.services.recordings.usage()
            except MeetingsError as exc:
                log.warning("the archive's usage is unknown: %s", exc)
                used, quota = 0, 0
            if quota > 0:
                used += recorder.bytes_written()
                percent = used * 100 / quota
                if used >= quota:
                    self._on_alarm(f"the archive's quota is reached ({used // 2**20} of {quota // 2**20} MiB): "
                                   "recording stopped; free space or raise the quota")
                    await self.stop()
                    return
                if percent >= self.services.recordings.config.recording_quota_warn_percent and not warned:
                    warned = True
                    self._on_alarm(f"the archive is at {percent:.0f} % of its quota ({used // 2**20} of "
                                   f"{quota // 2**20} MiB); recording stops when it is full")
            await asyncio.sleep(QUOTA_CHECK_S)

    # -- stage, owners, alarms --------------------------------------------------------------

    def update_stage(self) -> None:
        """The proceedings follow the floor holder, else the chair (the spotlight, if any, first)."""
        if self.recorder is None:
            return
        room = self.room
        router = room.router
        target = router.floor_holder
        if target is None:
            target = next((p.id for p in room.participants.values() if p.is_chair and p.client == "room"), None)
        router.set_own_pin(RECORDER_ID, target)

    def _owner_of(self, participant_id: str) -> TrackOwner:
        participant = self.room.participants.get(participant_id)
        if participant is None:
            return TrackOwner(participant_id)
        principal = participant.grant.principal
        return TrackOwner(participant_id, principal.person_id, principal.office_id, principal.full_name)

    def _on_alarm(self, message: str) -> None:
        self.alarm = message
        if self.recording_id is not None:
            self.room._spawn(self._report_alarm(self.recording_id, message))

    async def _report_alarm(self, recording_id: int, message: str) -> None:
        try:
            await self.services.recordings.alarm(SERVER, recording_id, message)
        except MeetingsError as exc:
            log.error("recording %s: the alarm could not be stored: %s", recording_id, exc)
        for moderator in self.room.moderation.moderators():
            await self.room.outbox.to(moderator, "recording", self.payload())

    async def _fail(self, recording_id: int, message: str) -> None:
        self.alarm = message
        log.error("recording %s: %s", recording_id, message, extra={"event": "recording.alarm"})
        try:
            await self.services.recordings.fail(SERVER, recording_id, message)
        except MeetingsError as exc:
            log.error("recording %s: the alarm could not be stored: %s", recording_id, exc)
