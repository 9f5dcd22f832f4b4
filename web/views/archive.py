"""The recording archive on the web: the list and search, the playback page, the folder's files (with
HTTP ranges), the MP4 export job, the BagIt hand-over package, deletion (a tombstone stays) and legal
hold; and the same under /api/recordings.

Every route asks the recording service first (``services.recordings.get``): a recording the caller may
not see is NotFound (404, never 403) on every route, page, API, file, manifest, export and bag alike.
The rows are meetings/'s; the files under ``<archive root>/<recording key>/`` are recordings/'s; this
module reads them (and removes them after the service has deleted a recording), never writes media.

File names come from the manifest (or the recording's file rows when there is no manifest) and must
match ``FILE_NAME_RE``: a name from the request is only ever compared with that list, never joined to a
path as it came.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import Meeting, Role
from meetings.models.recordings import FILE_NAME_RE, Recording, RecordingState
from meetings.policy import Action, decide
from meetings.services.common import meeting_access
from meetings.services.recordings import ACCESS_KINDS
from recordings.tombstone import bury
from web import keys
from web.forms import caller, int_param, principal, read_form, services
from web.middleware import see_other
from web.render import LOCAL_TZ, render
from web.views.archive_view import hms, local_time, proceedings_file, site_gaps, summary, timeline

routes = web.RouteTableDef()
log = logging.getLogger("web.archive")

MANIFEST = "manifest.json"
EXPORTS_DIR = ".exports"
#: The same person playing the same file again within this many seconds is not audited again: a
#: browser's <video> fetches a file in many range requests (and again on every seek), so one audit
#: row per request would bury the trail in noise; one per (recording, file, person, kind) per window
#: says who watched what, when.
AUDIT_WINDOW_SECONDS = 300
SPEEDS = (0.75, 1, 1.25, 1.5, 2)
CONTENT_TYPES = {".webm": "video/webm", ".json": "application/json", ".jsonl": "application/jsonl",
                 ".mp4": "video/mp4", ".tar": "application/x-tar"}
QUOTA_WARN_PERCENT = 90


# ------------------------------------------------------------------------------------------ the registry

@dataclass
class ExportJob:
    state: str = "running"  # running | done | failed
    progress: float = 0.0
    error: str = ""
    cancelled: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class ArchiveJobs:
    """The app's in-memory state for the archive: export jobs by recording id, bag locks, the audit throttle."""

    exports: dict[int, ExportJob] = field(default_factory=dict)
    bag_locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    audited: dict[tuple[int, str, int | None, str], float] = field(default_factory=dict)

    def should_audit(self, key: tuple[int, str, int | None, str]) -> bool:
        now = time.monotonic()
        if len(self.audited) > 10_000:  # forget old entries
            for old in [k for k, t in self.audited.items() if now - t > AUDIT_WINDOW_SECONDS]:
                del self.audited[old]
        last = self.audited.get(key)
        if last is not None and now - last < AUDIT_WINDOW_SECONDS:
            return False
        self.audited[key] = now
        return True


def setup(app: web.Application, archive_root: Path | None) -> None:
    app[keys.ARCHIVE_ROOT] = archive_root
    app[keys.ARCHIVE_JOBS] = ArchiveJobs()

    async def stop_jobs(_app: web.Application) -> None:
        jobs: ArchiveJobs = _app[keys.ARCHIVE_JOBS]
        running = [j.task for j in jobs.exports.values() if j.task is not None and not j.task.done()]
        for job in jobs.exports.values():
            job.cancelled = True
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    app.on_cleanup.append(stop_jobs)


def _jobs(request: web.Request) -> ArchiveJobs:
    return request.app[keys.ARCHIVE_JOBS]  # type: ignore[no-any-return]


def _root(request: web.Request) -> Path:
    root = request.app[keys.ARCHIVE_ROOT]
    if root is None:
        raise NotFound("no recording archive is configured")
    return root


def _folder(request: web.Request, recording: Recording) -> Path:
    # The key is the service's random URL-safe token; checked anyway, as any name in a path is.
    if not FILE_NAME_RE.match(recording.key) or recording.key.startswith("."):
        raise NotFound("no such recording")
    return _root(request) / recording.key


def _exports(request: web.Request) -> Path:
    return _root(request) / EXPORTS_DIR


# ------------------------------------------------------------------------------------------- helpers

async def _recording(request: web.Request) -> Recording:
    """The recording of the route's ``{id}``, if the caller may see it (else NotFound)."""
    principal(request)
    return await services(request).recordings.get(caller(request), int_param(request, "id"))


async def _meeting(request: web.Request, recording: Recording) -> Meeting:
    return await services(request).meetings.get(caller(request), recording.meeting_id)


def _may(request: web.Request, meeting: Meeting, action: Action) -> bool:
    return decide(principal(request), action, meeting_access(meeting)).allowed


def _secretariat(request: web.Request) -> bool:
    return principal(request).has(Role.SECRETARIAT)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    from recordings.manifest import load_manifest

    try:
        return load_manifest(folder)
    except (OSError, ValueError, Exception):  # noqa: BLE001 - missing or unreadable: shown as such
        return None


async def _manifest(request: web.Request, recording: Recording) -> dict[str, Any] | None:
    if recording.state is RecordingState.DELETED or request.app[keys.ARCHIVE_ROOT] is None:
        return None
    return await asyncio.to_thread(_read_manifest, _folder(request, recording))


def _listed_names(recording: Recording, manifest: dict[str, Any] | None) -> set[str]:
    """The file names this recording may serve: the manifest's present files and the manifest itself,
    or (no manifest yet: a failed or running recording) the file rows the recorder registered."""
    if manifest is not None:
        names = {str(f.get("name")) for f in manifest.get("files", []) if isinstance(f, dict) and f.get("present")}
        names.add(MANIFEST)
    else:
        names = {f.name for f in recording.files}
    return {n for n in names if FILE_NAME_RE.match(n) and n not in (".", "..") and not n.startswith(".")}


async def _audit(request: web.Request, recording: Recording, what: str, file_name: str | None, *,
                 throttle: bool = True) -> None:
    """``record_access`` (which also checks the caller again), at most once per window per
    (recording, file, person, kind) when ``throttle``. Kinds the service does not know (yet) are
    audited as downloads: something left the archive either way."""
    kind = what if what in ACCESS_KINDS else "download"
    names = {f.name for f in recording.files}
    target = file_name if file_name in names else None
    me = principal(request)
    if throttle and not _jobs(request).should_audit((recording.id, file_name or "", me.person_id, what)):
        return
    try:
        await services(request).recordings.record_access(caller(request), recording.id, kind, target)
    except Exception:
        # Not audited: not served either.
        _jobs(request).audited.pop((recording.id, file_name or "", me.person_id, what), None)
        raise


def _parse_day(value: str | None, field_name: str, *, end: bool = False) -> dt.datetime | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ValidationFailed(f"{field_name} must be a date (YYYY-MM-DD)", field=field_name) from None
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, tzinfo=LOCAL_TZ)
    return moment.astimezone(dt.UTC)


async def _find(request: web.Request) -> tuple[list[Recording], int, dict[str, str]]:
    """The list page's and the API's recordings: the search when there are words, else the newest."""
    q = request.query.get("q", "").strip()
    date_from = _parse_day(request.query.get("from"), "from")
    date_to = _parse_day(request.query.get("to"), "to", end=True)
    meeting_id = request.query.get("meeting") or None
    if meeting_id is not None and (not meeting_id.isdigit() or len(meeting_id) > 10):
        raise NotFound("no such meeting")
    svc = services(request).recordings
    if q:
        page = await svc.search(caller(request), q, date_from=date_from, date_to=date_to, meeting_id=meeting_id,
                                limit=100)
        found, total = list(page.recordings), page.total
    else:
        if meeting_id is not None:
            found = list(reversed(await svc.list_for_meeting(caller(request), int(meeting_id))))
        else:
            found = await svc.list_visible(caller(request), limit=200, offset=0)
        found = [r for r in found if (date_from is None or r.started_at >= date_from)
                 and (date_to is None or r.started_at <= date_to)]
        total = len(found)
    return found, total, {"q": q, "from": request.query.get("from", "")[:10], "to": request.query.get("to", "")[:10],
                          "meeting": meeting_id or ""}


async def _summaries(request: web.Request, found: list[Recording]) -> list[dict[str, Any]]:
    meetings = {m.id: m for m in await services(request).meetings.list_visible(caller(request))}
    names = await services(request).recordings.deleted_by_names(found)
    return [summary(r, meetings.get(r.meeting_id), names.get(r.deleted_by_id) if r.deleted_by_id else None)
            for r in found]


# --------------------------------------------------------------------------------------------- pages

@routes.get("/archive", name="archive")
async def archive_list(request: web.Request) -> web.StreamResponse:
    principal(request)
    error = None
    try:
        found, total, query = await _find(request)
    except ValidationFailed as exc:
        found, total, query, error = [], 0, {"q": request.query.get("q", "")[:200], "from": "", "to": "",
                                             "meeting": ""}, exc
    rows = await _summaries(request, found)
    usage = None
    if _secretariat(request):
        used, quota = await services(request).recordings.usage()
        percent = round(used * 100 / quota, 1) if quota > 0 else None
        usage = {"used": used, "quota": quota, "percent": percent,
                 "warning": percent is not None and percent >= QUOTA_WARN_PERCENT}
    for row in rows:
        row["when"] = local_time(dt.datetime.fromisoformat(row["started_at"])) if row["started_at"] else ""
        row["deleted_when"] = local_time(dt.datetime.fromisoformat(row["deleted_at"])) if row["deleted_at"] else ""
        row["duration"] = hms(row["duration_ms"])
    return render(request, "archive/list.html", {"rows": rows, "total": total, "query": query, "error": error,
                                                 "usage": usage, "searched": bool(query["q"])})


@routes.get("/archive/{id}", name="recording")
async def archive_page(request: web.Request, *, verified: list[str] | None = None,
                       notice: str = "") -> web.StreamResponse:
    recording = await _recording(request)
    meeting = await _meeting(request, recording)
    manifest = await _manifest(request, recording)
    line = timeline(manifest)
    proceedings = proceedings_file(line)
    start = 0.0
    try:
        start = max(0.0, float(request.query.get("t", "0")))
    except ValueError:
        start = 0.0
    names = await services(request).recordings.deleted_by_names([recording])
    base = f"/archive/{recording.id}"
    data = {
        "recording_id": recording.id, "base": base, "start": start if start < 10 ** 7 else 0.0,
        "proceedings": f"{base}/files/{proceedings}" if proceedings else None,
        "duration_ms": line["duration_ms"], "chapters": line["chapters"], "speakers": line["speakers"],
        "decisions": line["decisions"], "pauses": line["pauses"], "gaps": line["gaps"],
        "export_api": f"/api/recordings/{recording.id}/export", "speeds": list(SPEEDS),
    }
    sites = site_gaps(recording, await services(request).recordings.gap_offices(recording))
    tracks = [f for f in line["files"] if f.get("kind") == "track" and f.get("present")]
    return render(request, "archive/detail.html", {
        "recording": recording, "meeting": meeting, "manifest": manifest, "line": line, "data": data,
        "tracks": tracks, "proceedings": proceedings, "hms": hms, "local": local_time, "site_gaps": sites,
        "deleted_by": names.get(recording.deleted_by_id or 0), "speeds": SPEEDS,
        "can_delete": _may(request, meeting, Action.DELETE_RECORDING),
        "can_hold": _may(request, meeting, Action.MANAGE_RETENTION),
        "can_bag": _may(request, meeting, Action.MANAGE_RETENTION) and manifest is not None,
        "can_verify": _secretariat(request) and manifest is not None,
        "verified": verified, "notice": notice,
        "export_state": _export_state(request, recording),
    })


# --------------------------------------------------------------------------------------------- files

def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream")


def _serve(path: Path, name: str, *, download: bool) -> web.FileResponse:
    headers = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
               "Content-Type": _content_type(name)}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return web.FileResponse(path, headers=headers)


def _range_start(request: web.Request) -> int | None:
    """The first byte a Range header asks for (None: no range or not a simple one)."""
    value = request.headers.get("Range", "")
    if not value.startswith("bytes="):
        return None
    first = value[6:].split(",")[0].split("-")[0].strip()
    return int(first) if first.isdigit() else None


@routes.get("/archive/{id}/files/{name}")
async def archive_file(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    name = request.match_info["name"]
    if not FILE_NAME_RE.match(name) or name.startswith("."):
        raise NotFound("no such file in this recording")
    if recording.state is RecordingState.DELETED:
        raise NotFound("the recording was deleted")
    manifest = await _manifest(request, recording)
    if name not in _listed_names(recording, manifest):
        raise NotFound("no such file in this recording")
    folder = _folder(request, recording)
    path = folder / name  # ``name`` is one of the listed names, which have no separators
    if path.parent != folder or not path.is_file():
        raise NotFound("no such file in this recording")
    download = request.query.get("download") == "1"
    # Audit: a download always names itself (throttled per window against a resumed download's
    # retries); playback is audited on the request that starts reading the file (no Range, or a range
    # from byte 0), which a <video> element sends once per load: the chunks and seeks that follow are
    # not separate views. The window throttle catches reloads.
    if download:
        await _audit(request, recording, "manifest" if name == MANIFEST else "download", name)
    elif _range_start(request) in (None, 0):
        await _audit(request, recording, "manifest" if name == MANIFEST else "play", name)
    return _serve(path, name, download=download)


# -------------------------------------------------------------------------------------------- export

def _export_path(request: web.Request, recording: Recording) -> Path:
    return _exports(request) / f"{recording.key}.mp4"


def _export_state(request: web.Request, recording: Recording) -> dict[str, Any]:
    job = _jobs(request).exports.get(recording.id)
    if job is not None and job.state != "done":
        return {"state": job.state, "progress": round(job.progress, 4), "error": job.error}
    if recording.state is not RecordingState.DELETED and request.app[keys.ARCHIVE_ROOT] is not None \
            and _export_path(request, recording).is_file():
        return {"state": "done", "progress": 1.0, "error": "", "url": f"/archive/{recording.id}/export.mp4"}
    if job is not None:  # done, but the file is gone
        return {"state": "idle", "progress": 0.0, "error": ""}
    return {"state": "idle", "progress": 0.0, "error": ""}


async def _run_export(job: ExportJob, source: Path, destination: Path, chapters: list[Any], duration_ms: int,
                      recording_id: int) -> None:
    from recordings.export import export_mp4

    def progress(fraction: float) -> None:
        job.progress = max(job.progress, min(1.0, float(fraction)))

    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(export_mp4, source, destination, chapters=chapters, duration_ms=duration_ms,
                                progress=progress, should_stop=lambda: job.cancelled)
        job.progress, job.state = 1.0, "done"
        log.info("recording %s exported", recording_id, extra={"event": "archive.export_done",
                                                                "recording_id": recording_id})
    except Exception as exc:  # noqa: BLE001 - the page shows it
        job.state, job.error = "failed", str(exc)[:300] or exc.__class__.__name__
        log.warning("export of recording %s failed: %s", recording_id, exc,
                    extra={"event": "archive.export_failed", "recording_id": recording_id})


@routes.post("/archive/{id}/export")
async def export_start(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    if recording.state is RecordingState.DELETED:
        raise Conflict("the recording was deleted")
    manifest = await _manifest(request, recording)
    line = timeline(manifest)
    proceedings = proceedings_file(line)
    if proceedings is None:
        raise Conflict("this recording has no proceedings file to export")
    jobs = _jobs(request)
    job = jobs.exports.get(recording.id)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    exported = _export_path(request, recording).is_file()
    # One export per recording at a time; an MP4 already there is kept (a deletion removes it).
    if (job is None or job.state != "running") and not (exported and (job is None or job.state == "done")):
        await _audit(request, recording, "export", None, throttle=False)
        from recordings.export import Chapter

        duration = line["duration_ms"]
        chapters = [Chapter(c["start_ms"], int(c["end_ms"] if c["end_ms"] is not None else duration), c["title"])
                    for c in line["chapters"]]
        job = ExportJob()
        jobs.exports[recording.id] = job
        job.task = asyncio.create_task(_run_export(job, _folder(request, recording) / proceedings,
                                                   _export_path(request, recording), chapters, duration,
                                                   recording.id))
    if wants_json:
        return web.json_response(_export_state(request, recording), status=202)
    return see_other(f"/archive/{recording.id}#export")


@routes.get("/api/recordings/{id}/export")
async def export_status(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    return web.json_response(_export_state(request, recording))


@routes.get("/archive/{id}/export.mp4")
async def export_file(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    if recording.state is RecordingState.DELETED:
        raise NotFound("the recording was deleted")
    path = _export_path(request, recording)
    if not path.is_file():
        raise NotFound("no export of this recording yet")
    if _range_start(request) in (None, 0):
        await _audit(request, recording, "download", None)
    return _serve(path, f"recording-{recording.id}.mp4", download=request.query.get("download", "1") == "1")


# ----------------------------------------------------------------------------------------------- bag

@routes.get("/archive/{id}/bag.tar")
async def bag(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    meeting = await _meeting(request, recording)
    if not _may(request, meeting, Action.MANAGE_RETENTION):
        raise PermissionDenied("only the secretariat prepares hand-over packages")
    if recording.state is RecordingState.DELETED:
        raise NotFound("the recording was deleted")
    folder = _folder(request, recording)
    if not (folder / MANIFEST).is_file():
        raise Conflict("the recording has no manifest yet")
    await _audit(request, recording, "bag", None, throttle=False)
    from recordings.bagit import write_bag

    target = _exports(request) / f"{recording.key}-bag.tar"
    lock = _jobs(request).bag_locks.setdefault(recording.id, asyncio.Lock())
    name = f"cabinet-recording-{recording.id}"
    info = [("Source-Organization", "Office of the Council of Ministers"),
            ("External-Identifier", f"cabinet:recording:{recording.id}"),
            ("External-Description", meeting.title),
            ("Cabinet-Meeting-Id", str(meeting.id)),
            ("Cabinet-Manifest-SHA256", recording.manifest_sha256 or "")]

    def build() -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.unlink(missing_ok=True)
        try:
            write_bag(folder, partial, name=name, info=info)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    async with lock:  # the package is rebuilt for each request: the folder is what it is now
        await asyncio.to_thread(build)
    response = _serve(target, f"{name}.tar", download=True)
    return response


# ------------------------------------------------------------------------------ delete, hold, verify

@routes.post("/archive/{id}/delete")
async def delete(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    form = await read_form(request)
    reason = str(form.get("reason", "")).strip()
    if not reason:
        raise ValidationFailed("give a reason for deleting the recording", field="reason")
    names = await services(request).recordings.delete(caller(request), recording.id, reason)
    exports = _exports(request)
    await asyncio.to_thread(
        bury, _folder(request, recording), names,
        derived=[exports / f"{recording.key}.mp4", exports / f"{recording.key}-bag.tar"],
        deleted_at=dt.datetime.now(dt.UTC).isoformat(), by=principal(request).person_id, reason=reason)
    job = _jobs(request).exports.pop(recording.id, None)
    if job is not None:
        job.cancelled = True
    log.info("recording %s deleted (%d files)", recording.id, len(names),
             extra={"event": "archive.deleted", "recording_id": recording.id})
    return see_other(f"/archive/{recording.id}")


@routes.post("/archive/{id}/hold")
async def hold(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    form = await read_form(request)
    on = str(form.get("on", "")) in ("1", "true", "on")
    await services(request).recordings.set_legal_hold(caller(request), recording.id, on,
                                                      str(form.get("reason", "")).strip())
    return see_other(f"/archive/{recording.id}")


@routes.post("/archive/{id}/verify")
async def verify_now(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    if not _secretariat(request):
        raise PermissionDenied("only the secretariat verifies recordings")
    if recording.state is RecordingState.DELETED:
        raise Conflict("the recording was deleted")
    from recordings.manifest import verify

    problems = await asyncio.to_thread(verify, _folder(request, recording), recording.manifest_sha256)
    return await archive_page(request, verified=[str(p) for p in problems])


# ------------------------------------------------------------------------------------------------ API

@routes.get("/api/recordings")
async def api_list(request: web.Request) -> web.StreamResponse:
    principal(request)
    found, total, _ = await _find(request)
    return web.json_response({"recordings": await _summaries(request, found), "total": total})


@routes.get("/api/recordings/{id}")
async def api_recording(request: web.Request) -> web.StreamResponse:
    recording = await _recording(request)
    meeting = await _meeting(request, recording)
    names = await services(request).recordings.deleted_by_names([recording])
    manifest = await _manifest(request, recording)
    body = summary(recording, meeting, names.get(recording.deleted_by_id or 0))
    body["manifest"] = timeline(manifest) if manifest is not None else None
    body["site_gaps"] = site_gaps(recording, await services(request).recordings.gap_offices(recording))
    body["export"] = _export_state(request, recording)
    return web.json_response({"recording": body}, dumps=lambda v: json.dumps(v, ensure_ascii=False))
