"""The recording archive on the web, over the real server: the permission matrix over every archive route
(a recording the caller may not see is 404 everywhere, and absent from the list and the search), HTTP
ranges, traversal attempts, audited downloads, deletion with a tombstone, legal hold, the BagIt package
and the MP4 export job end to end (chapters checked with PyAV).

The recordings are real folders: a VP8/Opus WebM encoded here with PyAV and written with
recordings.webm.WebmWriter, a journal and a manifest assembled by recordings.manifest; the rows come
from the recording service, as the live recorder makes them."""

from __future__ import annotations

import array
import asyncio
import datetime as dt
import math
import json
import tarfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from yarl import URL

from harness import Client, LiveServer, make_config
from meetings.policy import Caller
from recordings.journal import Journal
from recordings.manifest import assemble, write_manifest
from recordings.webm import TrackSpec, WebmWriter

pytestmark = [pytest.mark.timeout(300)]

ROLES = ["secretariat", "chair", "governor", "commander", "observer"]
CLI = Caller.cli()
SERVER = Caller(principal=None, address="server", system=True)


# ------------------------------------------------------------------------------------------- media

def picture(width: int, height: int, i: int, count: int) -> av.VideoFrame:
    """A frame with a moving bright bar and a progress band (no numpy here)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = frame.planes[0]
    row = bytearray([40] * luma.line_size)
    x = (i * 7) % (width - 20)
    row[x:x + 20] = bytes([220] * 20)
    band = bytearray(row)
    band[: int(width * (i + 1) / count)] = bytes([120] * int(width * (i + 1) / count))
    luma.update(bytes(band) * (height // 4) + bytes(row) * (height - height // 4))
    for plane in frame.planes[1:]:
        plane.update(bytes([128]) * (plane.line_size * (height // 2)))
    return frame


def encode_webm(path: Path, seconds: float, *, video: bool = True, audio: bool = True, width: int = 320,
                height: int = 180, fps: int = 15) -> int:
    """A real VP8/Opus WebM of ``seconds``: frames encoded with PyAV (a moving bar and a tone), written
    with the recorder's own WebmWriter. Returns the last timestamp in ms."""
    specs = []
    if video:
        specs.append(TrackSpec(1, "video", "VP8", width, height))
    if audio:
        specs.append(TrackSpec(2, "audio", "OPUS", channels=2))
    frames: list[tuple[int, int, bytes, bool]] = []
    if video:
        enc = av.CodecContext.create("libvpx", "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.time_base = Fraction(1, fps)
        enc.framerate = Fraction(fps, 1)
        enc.gop_size = fps
        enc.bit_rate = 200_000
        enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        count = int(seconds * fps)
        for i in range(count + 1):
            packets = []
            if i < count:
                frame = picture(width, height, i, count)
                frame.pts = i
                packets = enc.encode(frame)
            else:
                packets = enc.encode(None)
            for packet in packets:
                frames.append((1, int(packet.pts * 1000 / fps), bytes(packet), packet.is_keyframe))
    if audio:
        enc_a = av.CodecContext.create("libopus", "w")
        enc_a.sample_rate = 48000
        enc_a.layout = "stereo"
        enc_a.format = "s16"
        enc_a.bit_rate = 32000
        enc_a.time_base = Fraction(1, 48000)
        total = int(seconds * 50)
        for i in range(total + 1):
            packets = []
            if i < total:
                samples = array.array("h")
                for n in range(960):
                    value = int(6000 * math.sin(2 * math.pi * 440 * (i * 960 + n) / 48000))
                    samples.extend((value, value))
                frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
                frame.planes[0].update(samples.tobytes())
                frame.sample_rate = 48000
                frame.pts = i * 960
                frame.time_base = Fraction(1, 48000)
                packets = enc_a.encode(frame)
            else:
                packets = enc_a.encode(None)
            for packet in packets:
                if packet.pts is None or packet.pts < 0:
                    continue
                frames.append((2, int(packet.pts / 48), bytes(packet), True))
    frames.sort(key=lambda f: (f[1], f[0]))
    writer = WebmWriter(path, specs, title=path.stem)
    last: dict[int, int] = {}
    for track, ms, data, key in frames:
        ms = max(ms, last.get(track, 0))
        last[track] = ms
        writer.add_frame(track, ms, data, keyframe=key)
    writer.close()
    return max(last.values())


def make_folder(directory: Path, *, seconds: float, recording_id: int, items: list[tuple[int, str]],
                speakers: list[tuple[int, str]], with_pause: bool = True) -> tuple[str, int, dict[str, Any]]:
    """A finalised recording folder: proceedings + two participant tracks, journal, manifest. Returns
    (manifest SHA-256, total bytes, manifest)."""
    directory.mkdir(parents=True, exist_ok=True)
    last = encode_webm(directory / "proceedings.webm", seconds)
    encode_webm(directory / "track-001-audio.webm", min(seconds, 3), video=False)
    encode_webm(directory / "track-001-video.webm", min(seconds, 3), audio=False)
    duration = last + 20
    journal = Journal(directory / "journal.jsonl")
    journal.append("start", utc=dt.datetime.now(dt.UTC).isoformat(), recording_id=recording_id)
    journal.append("file", name="proceedings.webm", kind="proceedings", media="av", media_ms=0)
    for media in ("audio", "video"):
        journal.append("file", name=f"track-001-{media}.webm", kind="track", media=media, participant_id="p1",
                       person_id=3, office_id=None, label="Keo Sreymom (Siem Reap)", media_ms=0)
    if with_pause:
        journal.append("pause", media_ms=duration - 1500, reason="in camera: personnel")
        journal.append("resume", media_ms=duration - 1000)
    journal.append("stop", media_ms=duration)
    journal.close()
    step = duration // max(1, len(items))
    record = {
        "chapters": [{"item_id": iid, "title": title, "start_ms": n * step, "end_ms": (n + 1) * step}
                     for n, (iid, title) in enumerate(items)],
        "speakers": [{"person_id": pid, "name": name, "office": "Siem Reap", "start_ms": n * 2000,
                      "end_ms": n * 2000 + 1800} for n, (pid, name) in enumerate(speakers)],
        "decisions": [{"item_id": items[0][0], "text": "Adopted without amendment", "at_ms": 1500}] if items else [],
        "votes": [],
    }
    manifest = assemble(directory, record)
    sha = write_manifest(directory, manifest)
    size = sum(p.stat().st_size for p in directory.iterdir() if p.suffix == ".webm")
    return sha, size, manifest


async def create_recording(services: Any, archive: Path, meeting_id: int, *, seconds: float,
                           items: list[tuple[int, str]]) -> dict[str, Any]:
    """A closed recording of ``meeting_id`` (opened first if it is scheduled), with its folder on disk."""
    meeting = await services.meetings.get(CLI, meeting_id)
    if meeting.state.value == "scheduled":
        await services.session.open(CLI, meeting_id)
    recording = await services.recordings.start(CLI, meeting_id)
    folder = archive / recording.key
    sha, size, manifest = await asyncio.to_thread(
        make_folder, folder, seconds=seconds, recording_id=recording.id, items=items,
        speakers=[(3, "Keo Sreymom"), (2, "Chan Sophal")])
    for f in manifest["files"]:
        await services.recordings.add_file(SERVER, recording.id, name=f["name"], kind=f["kind"], media=f["media"],
                                           person_id=f.get("person_id"))
        await services.recordings.update_file(SERVER, recording.id, f["name"], size_bytes=f["size"],
                                              sha256=f["sha256"], duration_ms=max(0, f["last_ms"]))
    await services.recordings.close(SERVER, recording.id, manifest_sha256=sha, size_bytes=size,
                                    duration_ms=manifest["duration_ms"])
    return {"id": recording.id, "key": recording.key, "folder": folder, "sha": sha, "manifest": manifest,
            "meeting_id": meeting_id}


# ------------------------------------------------------------------------------------------ server

#: The live server: cabinet/server.py gives the web app the archive's folder (config.archive_path).
ArchiveServer = LiveServer


def start_archive_server(tmp: Path) -> ArchiveServer:
    return ArchiveServer(make_config(tmp, **{"media.ice_bind_addresses": ["127.0.0.1"]})).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    live = start_archive_server(tmp_path_factory.mktemp("archive"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def recs(server: ArchiveServer) -> dict[str, Any]:
    async def build() -> dict[str, Any]:
        services = server.services()
        try:
            archive = server.config.archive_path
            visible = await services.meetings.list_visible(CLI)
            meetings = {"briefing": next(m for m in visible if m.kind.value == "briefing")}
            # The demo series' first occurrence carries the agenda.
            session = next(m for m in visible if m.kind.value == "cabinet_session" and m.agenda)
            items = [(i.id, i.title) for i in session.agenda]
            a = await create_recording(services, archive, session.id, seconds=4, items=items)
            b = await create_recording(services, archive, session.id, seconds=2, items=items[:1])
            c = await create_recording(services, archive, meetings["briefing"].id, seconds=2,
                                       items=[(0, "Border situation")])
            return {"a": a, "b": b, "c": c, "session": session.id, "briefing": meetings["briefing"].id,
                    "archive": archive}
        finally:
            await services.db.dispose()

    return asyncio.run(build())


async def clients(server: LiveServer) -> dict[str, Client]:
    out = {}
    for role in ROLES:
        out[role] = Client(server.url)
        await out[role].login(role)
    return out


async def close(all_clients: dict[str, Client]) -> None:
    for c in all_clients.values():
        await c.http.close()


async def status_of(client: Client, method: str, path: str, **kwargs: Any) -> int:
    headers = dict(kwargs.pop("headers", {}))
    if method != "GET":
        headers.setdefault("X-CSRF-Token", client.csrf or "")
    async with client.http.request(method, URL(path, encoded=True), headers=headers, allow_redirects=False,
                                   **kwargs) as response:
        await response.read()
        return response.status


def details(event: Any) -> dict[str, Any]:
    value = event.details
    return json.loads(value) if isinstance(value, str) else dict(value or {})


async def audit_events(server: LiveServer, prefix: str) -> list[Any]:
    services = server.services()
    try:
        return await services.audit.recent(CLI, limit=500, action_prefix=prefix)
    finally:
        await services.db.dispose()


# ------------------------------------------------------------------------------------------- tests

async def test_permission_matrix_every_route(server: ArchiveServer, recs: dict[str, Any]) -> None:
    a, c = recs["a"]["id"], recs["c"]["id"]
    everyone = await clients(server)
    failures: list[str] = []

    def routes(rid: int) -> list[tuple[str, str]]:
        return [("GET", f"/archive/{rid}"), ("GET", f"/api/recordings/{rid}"),
                ("GET", f"/archive/{rid}/files/proceedings.webm"), ("GET", f"/archive/{rid}/files/manifest.json"),
                ("GET", f"/archive/{rid}/files/track-001-audio.webm?download=1"),
                ("GET", f"/api/recordings/{rid}/export"), ("GET", f"/archive/{rid}/bag.tar")]

    # The cabinet session: everyone invited sees it; the commander (not invited) gets 404 everywhere.
    # The briefing: only the commander; the secretariat (not invited) gets 404 everywhere as well.
    bag_expected = {"a": {"secretariat": 200, "chair": 403, "governor": 403, "observer": 403, "commander": 404},
                    "c": {"secretariat": 404, "chair": 404, "governor": 404, "observer": 404, "commander": 403}}
    try:
        for label, rid, visible in (("a", a, set(ROLES) - {"commander"}), ("c", c, {"commander"})):
            for role, client in everyone.items():
                for method, path in routes(rid):
                    got = await status_of(client, method, path)
                    if path.endswith("bag.tar"):
                        want = bag_expected[label][role]
                    else:
                        want = 200 if role in visible else 404
                    if got != want:
                        failures.append(f"{role} {method} {path}: {got} (expected {want})")
                for method, path in (("POST", f"/archive/{rid}/export"), ("GET", f"/archive/{rid}/export.mp4"),
                                     ("POST", f"/archive/{rid}/delete"), ("POST", f"/archive/{rid}/hold"),
                                     ("POST", f"/archive/{rid}/verify")):
                    if role in visible:
                        continue  # the allowed side of these is tested below
                    got = await status_of(client, method, path, data={"reason": "x", "on": "1"})
                    if got != 404:
                        failures.append(f"{role} {method} {path}: {got} (expected 404)")
            # Refused writes of those who see it (a 403, not a 404: they know it exists).
        for role in ("chair", "governor", "observer"):
            for path in (f"/archive/{a}/delete", f"/archive/{a}/hold", f"/archive/{a}/verify"):
                got = await status_of(everyone[role], "POST", path, data={"reason": "no", "on": "1"})
                if got != 403:
                    failures.append(f"{role} POST {path}: {got} (expected 403)")
        got = await status_of(everyone["commander"], "POST", f"/archive/{c}/delete", data={"reason": "no"})
        if got != 403:
            failures.append(f"commander deletes the briefing's recording: {got} (expected 403)")
        assert not failures, "\n".join(failures)

        # Lists and the search: nothing of a recording one may not see, not even a count.
        for role, client in everyone.items():
            status, body = await client.api("GET", "/api/recordings")
            assert status == 200
            listed = {r["id"] for r in body["recordings"]}
            if role == "commander":
                assert c in listed and a not in listed, (role, listed)
            else:
                assert a in listed and c not in listed, (role, listed)
            status, body = await client.api("GET", "/api/recordings?q=Briefing")
            assert status == 200
            assert ({r["id"] for r in body["recordings"]} == {c}) == (role == "commander"), (role, body)
            assert body["total"] == (1 if role == "commander" else 0)
            status, page = await client.page("/archive?q=Cabinet")
            assert status == 200
            assert (f'href="/archive/{a}"' in page) == (role != "commander")
            assert f'href="/archive/{c}"' not in page
            status, page = await client.page("/archive")
            assert (f'href="/archive/{c}"' in page) == (role == "commander")
        status, body = await everyone["governor"].api("GET", "/api/recordings?q=flood%20preparedness")
        assert status == 200 and a in {r["id"] for r in body["recordings"]}  # an agenda item's words
        status, body = await everyone["governor"].api("GET", "/api/recordings?q=Cabinet&from=2000-01-01&to=2000-01-02")
        assert status == 200 and body["recordings"] == []
        # Anonymous: the login page (pages) or 401 (API), never the recording.
        async with Client(server.url) as anonymous:
            assert await status_of(anonymous, "GET", f"/archive/{a}") == 303
            assert await status_of(anonymous, "GET", f"/archive/{a}/files/proceedings.webm") == 303
            assert await status_of(anonymous, "GET", f"/api/recordings/{a}") == 401
    finally:
        await close(everyone)


async def test_playback_page_and_manifest_summary(server: ArchiveServer, recs: dict[str, Any]) -> None:
    a = recs["a"]
    async with Client(server.url) as gov:
        await gov.login("governor")
        status, page = await gov.page(f"/archive/{a['id']}")
        assert status == 200
        assert f'src="/archive/{a["id"]}/files/proceedings.webm"' in page
        assert 'id="archive-data"' in page and "/static/js/archive-player.js" in page
        assert a["sha"] in page
        assert "Draft sub-decree on provincial flood preparedness" in page
        assert "Keo Sreymom" in page and "Adopted without amendment" in page
        assert "In camera" in page and "track-001-audio.webm?download=1" in page
        assert 'id="delete-reason"' not in page and "bag.tar" not in page  # not the secretariat's
        data = json.loads(page.split('id="archive-data">', 1)[1].split("</script>", 1)[0])
        assert data["proceedings"].endswith("/files/proceedings.webm") and len(data["chapters"]) == 4
        status, page = await gov.page(f"/archive/{a['id']}?lang=km")
        assert status == 200 and "ល្បឿន" in page  # "Speed" in Khmer
        status, body = await gov.api("GET", f"/api/recordings/{a['id']}")
        assert status == 200
        rec = body["recording"]
        assert rec["manifest_sha256"] == a["sha"] and rec["state"] == "closed"
        assert [c["title"] for c in rec["manifest"]["chapters"]][1].startswith("Draft sub-decree")
        assert rec["manifest"]["pauses"][0]["reason"] == "in camera: personnel"
        assert {f["name"] for f in rec["manifest"]["files"]} == {"proceedings.webm", "track-001-audio.webm",
                                                                  "track-001-video.webm"}
    async with Client(server.url) as sec:
        await sec.login("secretariat")
        status, page = await sec.page("/archive")
        assert status == 200 and 'id="archive-usage"' in page
        status, page = await sec.page(f"/archive/{a['id']}")
        assert 'id="verify-button"' in page and "bag.tar" in page
        response = await sec.form(f"/archive/{a['id']}/verify", {})
        assert response.status == 200
        async with sec.http.post(f"/archive/{a['id']}/verify", data={"csrf_token": sec.csrf}) as response:
            body = await response.text()
        assert 'id="verify-result" data-ok="true"' in body


async def test_ranges_headers_and_traversal(server: ArchiveServer, recs: dict[str, Any]) -> None:
    a = recs["a"]
    size = (a["folder"] / "proceedings.webm").stat().st_size
    async with Client(server.url) as gov:
        await gov.login("governor")
        url = f"/archive/{a['id']}/files/proceedings.webm"
        async with gov.http.get(url, headers={"Range": "bytes=0-99"}) as response:
            body = await response.read()
            assert response.status == 206
            assert response.headers["Content-Range"] == f"bytes 0-99/{size}"
            assert response.headers["Content-Type"] == "video/webm"
            assert response.headers["Cache-Control"] == "private, no-store"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Disposition" not in response.headers
            assert body == (a["folder"] / "proceedings.webm").read_bytes()[:100]
        async with gov.http.get(url, headers={"Range": f"bytes={size - 10}-"}) as response:
            assert response.status == 206 and len(await response.read()) == 10
        async with gov.http.get(f"/archive/{a['id']}/files/manifest.json") as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
            assert json.loads(await response.read())["duration_ms"] == a["manifest"]["duration_ms"]
        async with gov.http.get(url + "?download=1") as response:
            assert response.status == 200 and len(await response.read()) == size
            assert response.headers["Content-Disposition"] == 'attachment; filename="proceedings.webm"'
        (recs["archive"] / "secret.txt").write_text("outside the recording")
        for name in ("..%2Fsecret.txt", "..%2F..%2Fcabinet.toml", "%2Fetc%2Fpasswd", "..", ".", "journal.jsonl",
                     "nothing.webm", "manifest.json.tmp", "%2E%2E%2Fsecret.txt", "proceedings.webm%00",
                     "track-001-audio.webm%2F..%2F..%2Fsecret.txt", "..%5Csecret.txt", "%252e%252e%252fsecret.txt"):
            got = await status_of(gov, "GET", f"/archive/{a['id']}/files/{name}")
            assert got == 404, (name, got)
        got = await status_of(gov, "GET", f"/archive/{a['id']}/files/../../secret.txt")
        assert got == 404
        # Another recording's key as a name, or another recording's file through this id: 404.
        got = await status_of(gov, "GET", f"/archive/{a['id']}/files/{recs['c']['key']}")
        assert got == 404


async def test_play_and_download_are_audited_once_per_window(server: ArchiveServer, recs: dict[str, Any]) -> None:
    b = recs["b"]
    before = max((e.seq for e in await audit_events(server, "recording.")), default=0)
    async with Client(server.url) as obs:
        await obs.login("observer")
        url = f"/archive/{b['id']}/files/proceedings.webm"
        for header in ("bytes=0-", "bytes=100-200", "bytes=300-", "bytes=0-"):
            async with obs.http.get(url, headers={"Range": header}) as response:
                await response.read()
                assert response.status == 206
        async with obs.http.get(f"/archive/{b['id']}/files/track-001-video.webm?download=1") as response:
            await response.read()
            assert response.status == 200
    new = [e for e in await audit_events(server, "recording.") if e.seq > before]
    plays = [e for e in new if e.action == "recording.play" and e.target_id == str(b["id"])]
    downloads = [e for e in new if e.action == "recording.download" and e.target_id == str(b["id"])]
    assert len(plays) == 1, [(e.action, e.details) for e in new]
    assert details(plays[0])["file"] == "proceedings.webm"
    assert len(downloads) == 1 and details(downloads[0])["file"] == "track-001-video.webm"


async def test_bag_for_the_secretariat(server: ArchiveServer, recs: dict[str, Any], tmp_path: Path) -> None:
    from recordings.bagit import validate_bag

    a = recs["a"]
    async with Client(server.url) as sec:
        await sec.login("secretariat")
        async with sec.http.get(f"/archive/{a['id']}/bag.tar") as response:
            assert response.status == 200
            assert "attachment" in response.headers["Content-Disposition"]
            (tmp_path / "bag.tar").write_bytes(await response.read())
    assert validate_bag(tmp_path / "bag.tar") == []
    with tarfile.open(tmp_path / "bag.tar") as tar:
        info = tar.extractfile(f"cabinet-recording-{a['id']}/bag-info.txt").read().decode()  # type: ignore[union-attr]
    assert f"Cabinet-Manifest-SHA256: {a['sha']}" in info
    assert any(e.action in ("recording.bag", "recording.download") and details(e).get("file") is None
               for e in await audit_events(server, "recording."))


async def test_export_job_end_to_end(server: ArchiveServer, recs: dict[str, Any], tmp_path: Path) -> None:
    a = recs["a"]
    async with Client(server.url) as chair:
        await chair.login("chair")
        status, body = await chair.api("GET", f"/api/recordings/{a['id']}/export")
        assert status == 200 and body["state"] == "idle"
        status, body = await chair.api("POST", f"/archive/{a['id']}/export", headers={"Accept": "application/json"})
        assert status == 202 and body["state"] in ("running", "done"), body
        # A second start while it runs is the same job.
        status, again = await chair.api("POST", f"/archive/{a['id']}/export", headers={"Accept": "application/json"})
        assert status == 202
        seen: list[float] = []
        deadline = time.monotonic() + 120
        while True:
            status, body = await chair.api("GET", f"/api/recordings/{a['id']}/export")
            assert status == 200
            seen.append(body["progress"])
            if body["state"] != "running" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert body["state"] == "done", body
        assert body["progress"] == 1.0 and seen == sorted(seen)
        status, body = await chair.api("POST", f"/archive/{a['id']}/export", headers={"Accept": "application/json"})
        assert status == 202 and body["state"] == "done"  # the MP4 there is kept, not made again
        async with chair.http.get(f"/archive/{a['id']}/export.mp4") as response:
            assert response.status == 200 and response.headers["Content-Type"] == "video/mp4"
            (tmp_path / "out.mp4").write_bytes(await response.read())
    with av.open(str(tmp_path / "out.mp4")) as container:
        chapters = container.chapters()
        assert [c["metadata"]["title"] for c in chapters] == [c["title"] for c in a["manifest"]["record"]["chapters"]]
        assert {"video", "audio"} <= {s.type for s in container.streams}  # (+ the chapters' text track)
    events = await audit_events(server, "recording.export")
    assert any(e.target_id == str(a["id"]) for e in events)


async def test_delete_needs_a_reason_and_leaves_a_tombstone(server: ArchiveServer, recs: dict[str, Any]) -> None:
    b = recs["b"]
    folder = b["folder"]
    async with Client(server.url) as sec:
        await sec.login("secretariat")
        await sec.page(f"/archive/{b['id']}")
        response = await sec.form(f"/archive/{b['id']}/delete", {"reason": "  "})
        assert response.status == 400
        assert (folder / "proceedings.webm").exists()
        # Under legal hold: refused.
        assert (await sec.form(f"/archive/{b['id']}/hold", {"on": "1", "reason": "court order 12/2026"})).status == 303
        assert (await sec.form(f"/archive/{b['id']}/delete", {"reason": "retention"})).status == 409
        assert (await sec.form(f"/archive/{b['id']}/hold", {"on": "0", "reason": "order lifted"})).status == 303
        response = await sec.form(f"/archive/{b['id']}/delete", {"reason": "duplicate of the morning run"})
        assert response.status == 303
        assert not (folder / "proceedings.webm").exists() and not (folder / "track-001-audio.webm").exists()
        status, page = await sec.page(f"/archive/{b['id']}")
        assert status == 200 and 'id="tombstone"' in page and "duplicate of the morning run" in page
        assert "Sok Dara" in page and "<video" not in page
        status, page = await sec.page("/archive")
        assert "duplicate of the morning run" in page
        assert await status_of(sec, "GET", f"/archive/{b['id']}/files/proceedings.webm") == 404
        assert await status_of(sec, "GET", f"/archive/{b['id']}/files/manifest.json") == 404
        assert await status_of(sec, "GET", f"/archive/{b['id']}/bag.tar") == 404
        status, body = await sec.api("GET", f"/api/recordings/{b['id']}")
        assert status == 200 and body["recording"]["state"] == "deleted"
        assert body["recording"]["delete_reason"] == "duplicate of the morning run"
    events = await audit_events(server, "recording.delete")
    assert any(e.target_id == str(b["id"]) for e in events)


async def test_the_nav_and_the_meeting_page_link_the_archive(server: ArchiveServer, recs: dict[str, Any]) -> None:
    async with Client(server.url) as gov:
        await gov.login("governor")
        status, page = await gov.page(f"/meetings/{recs['session']}")
        assert status == 200 and 'href="/archive"' in page
        assert f'href="/archive?meeting={recs["session"]}"' in page
        status, page = await gov.page(f"/archive?meeting={recs['session']}")
        assert status == 200 and f'href="/archive/{recs["a"]["id"]}"' in page
        status, body = await gov.api("GET", f"/api/recordings?meeting={recs['session']}")
        assert status == 200 and recs["a"]["id"] in {r["id"] for r in body["recordings"]}
        assert await status_of(gov, "GET", f"/archive?meeting={recs['briefing']}") == 404
