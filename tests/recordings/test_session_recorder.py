"""A router recorded by SessionRecorder: two bots publish, the stage switches, the recording pauses.

Real aiortc connections on 127.0.0.1 (the bots' stamped VP8 and Opus), real files; every file is
then demuxed and decoded with PyAV (the test may decode: the recorder may not). The bots' stamps
(frame counter, send time, identity: bots/stamp.py) say what was sent, so the test checks what
was recorded against them: counts, the time line, whose media the proceedings carry.
"""

from __future__ import annotations

import ast
import contextlib
import asyncio
import datetime as dt
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
import av
import pytest

from bots.inprocess import connect_publisher
from bots.media_files import PreEncodedMedia
from bots.publisher import Publisher
from bots.stamp import read_stamp, source_tag
from media import Router
from recordings.manifest import assemble, verify, write_manifest
from recordings.session import PROCEEDINGS_NAME, SessionRecorder, TrackOwner
from recordings.webm_repair import read_frames

pytestmark = pytest.mark.timeout(120)
RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"


def decode_all(path: Path) -> dict[str, int]:
    """Decoded frames per stream kind; any decoding error fails the test."""
    counts: dict[str, int] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            for _frame in packet.decode():
                kind = packet.stream.type
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def stamped(path: Path) -> dict[int, list[tuple[int, Any]]]:
    """Per track number: (media ms, stamp) of every frame."""
    out: dict[int, list[tuple[int, Any]]] = {}
    for frame in read_frames(path):
        stamp = read_stamp(frame.data)
        assert stamp is not None, f"{path.name}: a frame without the bot's stamp"
        out.setdefault(frame.track, []).append((frame.timestamp_ms, stamp))
    return out


def missing_besides_the_pause(counters: list[int]) -> tuple[int, int]:
    """(frames missing from the counter sequence, not counting its largest gap: the pause), total."""
    ordered = sorted(counters)
    gaps = sorted(b - a - 1 for a, b in zip(ordered, ordered[1:], strict=False))
    return sum(gaps[:-1]), ordered[-1] - ordered[0] + 1 - (gaps[-1] if gaps else 0)


@contextlib.contextmanager
def codecs_forbidden() -> Iterator[list[str]]:
    """Inside: anything in this process that creates an encoder or decoder fails (and is listed)."""
    made: list[str] = []

    def forbidden(name: str) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            made.append(name)
            raise AssertionError(f"{name} called while recording")
        return spy

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rtcrtpsender, "get_encoder", forbidden("aiortc get_encoder"))
        patch.setattr(rtcrtpreceiver, "get_decoder", forbidden("aiortc get_decoder"))
        patch.setattr(av, "open", forbidden("av.open"))
        patch.setattr(av, "CodecContext", forbidden("av.CodecContext"))
        yield made


def test_recordings_package_uses_no_codec_library() -> None:
    """Only the on-demand export (recordings/export.py) may touch a codec library, and nothing else in
    the package imports it."""
    for path in RECORDINGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if path.name != "export.py":
                    assert not name.startswith(("av", "aiortc.codecs", "aiortc.contrib")), f"{path.name}: {name}"
                    assert name not in ("export", "recordings.export"), f"{path.name} imports the export"


async def record_two_publishers(router: Router, media: PreEncodedMedia, directory: Path,
                                alarms: list[str]) -> tuple[SessionRecorder, list[Any]]:
    """alice and bob publish; the recorder's stage shows alice, then bob; a 1 s pause; ~9.5 s in all."""
    publishers: list[Publisher] = []
    try:
        for name in ("alice", "bob"):
            publishers.append(Publisher(media, bind_addresses=["127.0.0.1"]))
            await connect_publisher(router, name, publishers[-1])
        recorder = SessionRecorder(router, directory, owner_of=lambda pid: TrackOwner(pid, label=pid),
                                   on_alarm=alarms.append, meta={"meeting_id": 1})
        recorder.start()
        router.set_own_pin("recorder", "alice")
        await asyncio.sleep(3.0)
        router.set_own_pin("recorder", "bob")
        await asyncio.sleep(3.0)
        recorder.pause("in camera")
        await asyncio.sleep(1.0)
        recorder.resume()
        await asyncio.sleep(2.5)
        return recorder, await recorder.close()
    finally:
        for publisher in publishers:
            await publisher.close()


async def test_two_publishers_recorded_with_proceedings_switch_and_pause(
        router: Router, small_media: PreEncodedMedia, tmp_path: Path) -> None:
    alarms: list[str] = []
    directory = tmp_path / "rec"
    with codecs_forbidden() as no_codecs:
        recorder, files = await record_two_publishers(router, small_media, directory, alarms)
    stats = recorder.feed_stats()
    assert no_codecs == [] and alarms == []
    assert sorted(f.name for f in files) == [PROCEEDINGS_NAME, "track-001-audio.webm", "track-002-video.webm",
                                             "track-003-audio.webm", "track-004-video.webm"]

    manifest = assemble(directory, {"chapters": []}, stats=stats)
    sha = write_manifest(directory, manifest)
    assert verify(directory, sha) == []
    assert not manifest["recovered"] and manifest["gaps"] == []
    assert [p["reason"] for p in manifest["pauses"]] == ["in camera"]
    pause = manifest["pauses"][0]
    assert 900 <= pause["end_ms"] - pause["start_ms"] <= 1500
    started_us = dt.datetime.fromisoformat(manifest["started_utc"].replace("Z", "+00:00")).timestamp() * 1e6

    medians: list[float] = []
    for entry in manifest["files"]:
        # Wall-clock evidence of every track's time line: its first anchor, and the senders' reports.
        assert entry["anchors"] and entry["anchors"][0]["reason"] == "first", entry["name"]
        if entry["kind"] == "track":
            assert entry["sender_reports"], entry["name"]
        path = directory / entry["name"]
        decoded = decode_all(path)
        per_track = stamped(path)
        written = sum(len(v) for v in per_track.values())
        assert sum(decoded.values()) >= written - 2, (entry["name"], decoded, written)  # decoders may hold the last
        for track, frames in per_track.items():
            missing, total = missing_besides_the_pause([s.counter for _, s in frames])
            assert total > 100 if track == 1 and entry["media"] == "audio" else total > 20
            assert missing <= total // 100, (entry["name"], track, missing, total)
            offsets = [started_us + ms * 1000 - s.send_us for ms, s in frames]
            spread = statistics.quantiles(offsets, n=20)
            assert spread[-1] - spread[0] < 100_000, (entry["name"], track, spread[0], spread[-1])
            if entry["kind"] == "track":
                medians.append(statistics.median(offsets))
    assert max(medians) - min(medians) < 100_000, medians  # every track on one time line, within 100 ms

    proceedings = stamped(directory / PROCEEDINGS_NAME)
    for track in (1, 2):
        sources = [s.source for _, s in proceedings[track]]
        alice, bob = source_tag("alice"), source_tag("bob")
        switch = sources.index(bob)
        assert sources[:switch] == [alice] * switch and sources[switch:] == [bob] * (len(sources) - switch)
        assert switch > 20
