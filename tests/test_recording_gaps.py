"""A site's gap in a recording while its node's link is cut, and the node's copy filling it
(meetings/services/recording_gaps.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select

from meetings import demo
from meetings.errors import PermissionDenied
from meetings.models import AuditEvent, Office, ProvincialNode, Recording, RecordingFile
from meetings.models.base import utcnow
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.recording_gaps import COVER_SLACK, covers
from record_fixtures import open_session

CLI = Caller.cli()
SERVER = Caller(principal=None, address="server", system=True)
SESSION = 1  # the demo's cabinet session: KH-17 is invited
T0 = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
SHA = "ab" * 32


def span(start_s: float, end_s: float) -> RecordingFile:
    return RecordingFile(name="t.webm", kind="track", media="video", started_at=T0 + dt.timedelta(seconds=start_s),
                         ended_at=T0 + dt.timedelta(seconds=end_s))


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_covers_needs_the_whole_interval_within_the_slack() -> None:
    slack = COVER_SLACK.total_seconds()
    assert covers([span(0, 100)], at(10), at(70))
    assert covers([span(10 + slack - 0.5, 70 - slack + 0.5)], at(10), at(70)), "edges within the slack"
    assert not covers([span(10 + slack + 1, 100)], at(10), at(70)), "begins too late"
    assert not covers([span(0, 70 - slack - 1)], at(10), at(70)), "ends too early"
    assert covers([span(0, 40), span(40.5, 100)], at(10), at(70)), "two files that meet"
    assert not covers([span(0, 30), span(30 + slack + 2, 100)], at(10), at(70)), "a hole between them"
    assert not covers([], at(10), at(70))
    assert covers([span(50, 100), span(0, 52)], at(10), at(70)), "in any order"


@pytest.fixture
async def loaded(services: Services) -> Services:
    await demo.load(services, now=T0 - dt.timedelta(days=3))
    return services


async def kh17_node(services: Services) -> ProvincialNode:
    async with services.db.read() as session:
        office = await session.scalar(select(Office).where(Office.code == "KH-17"))
    assert office is not None
    node, _ = await services.nodes.add(CLI, office_id=office.id, name="Siem Reap hall")
    return node


def manifest(office_id: int, started: dt.datetime, tracks: list[tuple[int, int]]) -> dict[str, Any]:
    """A node's manifest of ``SESSION``: the office's tracks over (first_ms, last_ms) from ``started``."""
    files = [{"name": f"track-{n:03d}-video.webm", "kind": "track", "media": "video", "present": True,
              "sha256": SHA, "size": 1000, "first_ms": first, "last_ms": last, "office_id": office_id,
              "person_id": None, "frames": {"video": 10}} for n, (first, last) in enumerate(tracks, 1)]
    return {"started_utc": started.isoformat(), "duration_ms": max(last for _, last in tracks), "files": files}


async def audit(services: Services, action: str) -> list[AuditEvent]:
    async with services.db.read() as session:
        return list((await session.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_a_cut_opens_a_gap_the_return_ends_it_and_the_nodes_copy_fills_it(loaded: Services) -> None:
    s = loaded
    node = await kh17_node(s)
    await open_session(s, SESSION, utcnow())
    recording = await s.recordings.start(SERVER, SESSION)
    cut = utcnow()
    [gap_id] = await s.recordings.open_gaps(SERVER, node.id, [SESSION, 999], cut)
    assert await s.recordings.open_gaps(SERVER, node.id, [SESSION], cut + dt.timedelta(seconds=5)) == [gap_id], \
        "a second cut report while it is open is the same gap"
    with pytest.raises(PermissionDenied):
        await s.recordings.open_gaps(Caller(principal=None, address="x"), node.id, [SESSION], cut)
    [gap] = (await s.recordings._load(recording.id)).gaps
    assert (gap.office_id, gap.node_id, gap.ended_at, gap.filled_by_id) == (node.office_id, node.id, None, None)
    back = cut + dt.timedelta(seconds=60)
    assert await s.recordings.end_gaps(SERVER, node.id, back) == 1
    assert await s.recordings.end_gaps(SERVER, node.id, back) == 0, "nothing open any more"
    assert len(await audit(s, "recording.gap")) == 1

    # A copy that stops 20 s into the cut does not fill it; one that covers it does, and says so.
    short = await s.recordings.add_from_node(
        SERVER, node, SESSION, key="node-copy-short-0001", manifest=manifest(node.office_id, cut - dt.timedelta(
            seconds=30), [(0, 50_000)]), manifest_sha256=SHA, size_bytes=1000)
    assert (await s.recordings._load(recording.id)).gaps[0].filled_by_id is None
    other_office = manifest(node.office_id + 1, cut - dt.timedelta(seconds=30), [(0, 200_000)])
    await s.recordings.add_from_node(SERVER, node, SESSION, key="node-copy-other-0001", manifest=other_office,
                                     manifest_sha256=SHA, size_bytes=1000)
    assert (await s.recordings._load(recording.id)).gaps[0].filled_by_id is None, "another office's tracks"
    whole = await s.recordings.add_from_node(
        SERVER, node, SESSION, key="node-copy-whole-0001", manifest=manifest(node.office_id, cut - dt.timedelta(
            seconds=30), [(0, 50_000), (49_000, 120_000)]), manifest_sha256=SHA, size_bytes=1000)
    [gap] = (await s.recordings._load(recording.id)).gaps
    assert gap.filled_by_id == whole.id and short.id != whole.id
    [filled] = await audit(s, "recording.gap_filled")
    details = json.loads(filled.details) if isinstance(filled.details, str) else filled.details
    assert filled.target_id == str(recording.id) and details["filled_by"] == whole.id
    assert details["seconds"] == 60.0 and details["node_id"] == node.id


async def test_a_gap_still_open_ends_with_the_recording(loaded: Services) -> None:
    s = loaded
    node = await kh17_node(s)
    await open_session(s, SESSION, utcnow())
    recording = await s.recordings.start(SERVER, SESSION)
    await s.recordings.open_gaps(SERVER, node.id, [SESSION], utcnow())
    closed = await s.recordings.close(SERVER, recording.id, manifest_sha256=SHA, size_bytes=0, duration_ms=0)
    [gap] = closed.gaps
    assert gap.ended_at == closed.ended_at
    assert await s.recordings.open_gaps(SERVER, node.id, [SESSION], utcnow()) == [], "no recording is being made"
    async with s.db.read() as session:
        assert await session.scalar(select(Recording.id).where(Recording.id == recording.id)) == recording.id
