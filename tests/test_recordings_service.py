"""The recording archive's rows through RecordingService, on SQLite and PostgreSQL: lifecycle and audit,
pauses, visibility (a briefing's recordings exist only for its invitees), deletion, retention, search."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pytest

from meetings import demo
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import AuditEvent, Meeting, MeetingKind, MeetingState, RecordingState
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of
from meetings.services.recordings import fts5_query

CLI = Caller.cli()
SHA = hashlib.sha256(b"manifest").hexdigest()


async def as_(services: Services, username: str) -> Caller:
    return Caller(principal_of(await services.people.find(CLI, username)), "127.0.0.1")


@pytest.fixture
async def loaded(services: Services) -> Services:
    await demo.load(services, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=14))
    return services


async def meeting_of(services: Services, kind: MeetingKind) -> Meeting:
    return next(m for m in await services.meetings.list_visible(CLI)
                if m.kind is kind and (m.agenda or kind is MeetingKind.BRIEFING))


async def actions(services: Services, prefix: str) -> list[AuditEvent]:
    return list(await services.audit.recent(CLI, limit=200, action_prefix=prefix))


async def closed_recording(s: Services, meeting: Meeting, *, files: tuple[str, ...] = ("a.webm",)) -> int:
    if (await s.meetings.get(CLI, meeting.id)).state is not MeetingState.OPEN:
        await s.session.open(CLI, meeting.id)
    rec = await s.recordings.start(CLI, meeting.id)
    for name in files:
        await s.recordings.add_file(CLI, rec.id, name=name, kind="track", media="av")
        await s.recordings.update_file(CLI, rec.id, name, size_bytes=1000, sha256=SHA, frames=10)
    await s.recordings.close(CLI, rec.id, manifest_sha256=SHA, size_bytes=1000 * len(files), duration_ms=5000)
    return rec.id


async def test_lifecycle_pause_resume_and_audit(loaded: Services) -> None:
    s = loaded
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    chair, sec, gov = [await as_(s, u) for u in ("chair", "secretariat", "governor")]
    with pytest.raises(Conflict):  # not open yet
        await s.recordings.start(chair, session.id)
    await s.session.open(chair, session.id)
    with pytest.raises(PermissionDenied):
        await s.recordings.start(gov, session.id)
    rec = await s.recordings.start(chair, session.id)
    assert rec.state is RecordingState.RECORDING and len(rec.key) >= 22 and rec.key != str(rec.id)
    assert (await s.recordings.start(CLI, session.id)).id == rec.id  # the active one, not a second
    with pytest.raises(PermissionDenied):
        await s.recordings.add_file(chair, rec.id, name="x.webm", kind="track", media="audio")
    for bad in ("../x", "a/b", "", "x" * 101, ".."):
        with pytest.raises(ValidationFailed):
            await s.recordings.add_file(CLI, rec.id, name=bad, kind="track", media="audio")
    gov_person = await s.people.find(CLI, "governor")
    await s.recordings.add_file(CLI, rec.id, name="gov.webm", kind="track", media="av",
                                person_id=gov_person.id, office_id=gov_person.office_id)
    with pytest.raises(Conflict):
        await s.recordings.add_file(CLI, rec.id, name="gov.webm", kind="track", media="av")
    await s.recordings.update_file(CLI, rec.id, "gov.webm", size_bytes=4096, frames=90, gap_ms=0, sha256=SHA)
    with pytest.raises(PermissionDenied):
        await s.recordings.pause(gov, rec.id, "in camera")
    paused = await s.recordings.pause(sec, rec.id, "Item 3 in camera")
    assert paused.state is RecordingState.PAUSED and paused.pauses[0].ended_at is None
    with pytest.raises(Conflict):
        await s.recordings.pause(chair, rec.id, "again")
    resumed = await s.recordings.resume(chair, rec.id)
    assert resumed.state is RecordingState.RECORDING and resumed.pauses[0].ended_at is not None
    with pytest.raises(Conflict):
        await s.recordings.resume(chair, rec.id)
    with pytest.raises(ValidationFailed):
        await s.recordings.close(CLI, rec.id, manifest_sha256="zz", size_bytes=1, duration_ms=1)
    assert await s.recordings.usage() == (4096, 0)
    closed = await s.recordings.close(CLI, rec.id, manifest_sha256=SHA, size_bytes=5000, duration_ms=60000)
    assert (closed.state, closed.manifest_sha256, closed.keep_until) == (RecordingState.CLOSED, SHA, None)
    assert closed.ended_at is not None and [f.name for f in closed.files] == ["gov.webm"]
    with pytest.raises(Conflict):
        await s.recordings.close(CLI, rec.id, manifest_sha256=SHA, size_bytes=5000, duration_ms=60000)
    assert await s.recordings.usage() == (5000, 0)
    events = [e.action for e in reversed(await actions(s, "recording."))]
    assert events == ["recording.start", "recording.file", "recording.pause", "recording.resume",
                      "recording.close"]
    close = json.loads((await actions(s, "recording.close"))[0].details)
    assert close["manifest_sha256"] == SHA  # the manifest's hash is in the audit chain
    assert (await s.audit.verify(CLI)).ok
    await s.recordings.record_access(gov, rec.id, "play", "gov.webm")
    with pytest.raises(NotFound):
        await s.recordings.record_access(gov, rec.id, "download", "../../etc/passwd")
    with pytest.raises(ValidationFailed):
        await s.recordings.record_access(gov, rec.id, "steal", "gov.webm")
    assert [e.action for e in await actions(s, "recording.play")] == ["recording.play"]
    # After a restart mid-session the leftover is failed (or closed), then a new recording starts.
    second = await s.recordings.start(CLI, session.id)
    await s.recordings.fail(CLI, second.id, "disk full")
    third = await s.recordings.start(CLI, session.id)
    assert third.id not in (rec.id, second.id)
    assert [r.id for r in await s.recordings.list_for_meeting(gov, session.id)] == [rec.id, second.id, third.id]
    failed = await s.recordings.get(chair, second.id)
    assert (failed.state, failed.alarm) == (RecordingState.FAILED, "disk full")


async def test_meeting_not_recorded(loaded: Services) -> None:
    s = loaded
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    await s.session.open(CLI, session.id)
    async with s.db.write() as uow:
        await uow.session.execute(Meeting.__table__.update().where(Meeting.id == session.id)
                                  .values(record_sessions=False))
    with pytest.raises(Conflict):
        await s.recordings.start(CLI, session.id)


async def test_a_briefing_exists_only_for_its_invitees(loaded: Services) -> None:
    s = loaded
    briefing = await meeting_of(s, MeetingKind.BRIEFING)
    rec_id = await closed_recording(s, briefing)
    commander, gov, sec = [await as_(s, u) for u in ("commander", "governor", "secretariat")]
    assert (await s.recordings.get(commander, rec_id)).id == rec_id
    for outsider in (gov, sec):  # not invited: 404, never 403
        with pytest.raises(NotFound):
            await s.recordings.get(outsider, rec_id)
        with pytest.raises(NotFound):
            await s.recordings.list_for_meeting(outsider, briefing.id)
        with pytest.raises(NotFound):
            await s.recordings.record_access(outsider, rec_id, "download", "a.webm")
        with pytest.raises(NotFound):
            await s.recordings.delete(outsider, rec_id, "tidying up")
        with pytest.raises(NotFound):
            await s.recordings.pause(outsider, rec_id, "x")
        assert rec_id not in [r.id for r in await s.recordings.list_visible(outsider)]
        found = await s.recordings.search(outsider, "Security Briefing")
        assert (found.total, found.recordings) == (0, [])
        assert (await s.recordings.search(outsider, "Military", meeting_id=briefing.id)).total == 0
    found = await s.recordings.search(commander, "Security Briefing")
    assert (found.total, [r.id for r in found.recordings]) == (1, [rec_id])
    assert [r.id for r in await s.recordings.list_visible(commander)] == [rec_id]


async def test_delete_with_reason_tombstone_and_legal_hold(loaded: Services) -> None:
    s = loaded
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    await s.session.open(CLI, session.id)
    chair, sec, gov = [await as_(s, u) for u in ("chair", "secretariat", "governor")]
    running = await s.recordings.start(CLI, session.id)
    with pytest.raises(Conflict):  # still recording
        await s.recordings.delete(sec, running.id, "mistake")
    await s.recordings.add_file(CLI, running.id, name="b.webm", kind="proceedings", media="av")
    await s.recordings.add_file(CLI, running.id, name="manifest.json", kind="manifest", media="av")
    await s.recordings.close(CLI, running.id, manifest_sha256=SHA, size_bytes=10, duration_ms=10)
    for who in (chair, gov):
        with pytest.raises(PermissionDenied):
            await s.recordings.delete(who, running.id, "mine")
        with pytest.raises(PermissionDenied):
            await s.recordings.set_legal_hold(who, running.id, True, "court")
    for reason in ("", "   ", "x" * 501, None):
        with pytest.raises(ValidationFailed):
            await s.recordings.delete(sec, running.id, reason)
    held = await s.recordings.set_legal_hold(sec, running.id, True, "Court order 12/2026")
    assert held.legal_hold
    with pytest.raises(Conflict, match="legal hold"):
        await s.recordings.delete(sec, running.id, "retention")
    await s.recordings.set_legal_hold(sec, running.id, False, "Order lifted")
    names = await s.recordings.delete(sec, running.id, "Recorded by mistake before the session")
    assert names == ["b.webm", "manifest.json"]
    tomb = await s.recordings.get(gov, running.id)
    assert (tomb.state, tomb.files, tomb.delete_reason) == (RecordingState.DELETED, [],
                                                            "Recorded by mistake before the session")
    assert tomb.deleted_at is not None and tomb.deleted_by_id == sec.actor_id
    assert [r.state for r in await s.recordings.list_for_meeting(gov, session.id)] == [RecordingState.DELETED]
    with pytest.raises(Conflict):
        await s.recordings.delete(sec, running.id, "again")
    with pytest.raises(Conflict):
        await s.recordings.record_access(gov, running.id, "download", "b.webm")
    [event] = await actions(s, "recording.delete")
    details = json.loads(event.details)
    assert details["reason"] == "Recorded by mistake before the session"
    assert [f["name"] for f in details["files"]] == names
    assert [e.action for e in await actions(s, "recording.legal_hold")] == ["recording.legal_hold"] * 2
    assert await s.recordings.usage() == (0, 0)


async def test_retention_due_and_quota(services: Services) -> None:
    await demo.load(services, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=14))
    s = services
    s.recordings.config = dataclasses.replace(s.recordings.config, recording_quota_bytes=2000)
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    rec_id = await closed_recording(s, session)
    sec, chair = await as_(s, "secretariat"), await as_(s, "chair")
    now = dt.datetime.now(dt.UTC)
    assert await s.recordings.retention_due(now + dt.timedelta(days=10000)) == []  # "keep": no expiry
    with pytest.raises(PermissionDenied):
        await s.recordings.set_retention(chair, rec_id, "5y")
    with pytest.raises(ValidationFailed):
        await s.recordings.set_retention(sec, rec_id, "forever-ish")
    rec = await s.recordings.set_retention(sec, rec_id, "5y")
    assert rec.keep_until is not None and rec.ended_at is not None
    assert rec.keep_until - rec.ended_at == dt.timedelta(days=1825)
    assert await s.recordings.retention_due(now) == []
    later = now + dt.timedelta(days=1826)
    assert [r.id for r in await s.recordings.retention_due(later)] == [rec_id]
    await s.recordings.set_legal_hold(sec, rec_id, True, "inquiry")
    assert await s.recordings.retention_due(later) == []
    await s.recordings.set_legal_hold(sec, rec_id, False, "inquiry closed")
    assert await s.recordings.usage() == (1000, 2000) and await s.recordings.quota_level() == "ok"
    s.recordings.config = dataclasses.replace(s.recordings.config, recording_quota_bytes=1100)
    assert await s.recordings.quota_level() == "warning"
    assert await s.recordings.delete(CLI, rec_id, "retention: 5y") == ["a.webm"]
    assert json.loads((await actions(s, "recording.retention"))[0].details)["new"] == "5y"


async def test_search_by_item_decision_office_speaker(loaded: Services) -> None:
    s = loaded
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    chair, gov, obs = [await as_(s, u) for u in ("chair", "governor", "observer")]
    await s.session.open(CLI, session.id)
    governor = await s.people.find(CLI, "governor")
    await s.floor.grant(chair, session.id, person_id=governor.id, office_id=governor.office_id)
    await s.decisions.record(chair, session.id, session.agenda[2].id, outcome="adopted",
                             text="Tranche approved for Kampong Thom culverts.")
    rec_id = await closed_recording(s, session)
    for query in ("flood preparedness", "PREPAREDNESS", "culverts", "Kampong Thom", "Water Resources",
                  "Keo Sreymom", "សៀមរាប", "Weekly Cabinet"):
        found = await s.recordings.search(gov, query)
        assert [r.id for r in found.recordings] == [rec_id], query
        assert found.total == 1
    assert (await s.recordings.search(obs, "culverts")).total == 1
    assert (await s.recordings.search(gov, "flood nonexistentword")).total == 0
    # A later decision reaches the index once the meeting is reindexed.
    await s.decisions.record(chair, session.id, session.agenda[3].id, outcome="deferred", text="Irrigation canals.")
    assert (await s.recordings.search(gov, "irrigation")).total == 0
    await s.recordings.reindex(CLI, session.id)
    assert (await s.recordings.search(gov, "irrigation")).total == 1
    assert (await s.recordings.search(gov, "culverts")).total == 1
    # Filters.
    start = (await s.recordings.get(gov, rec_id)).started_at
    assert (await s.recordings.search(gov, "culverts", date_from=start + dt.timedelta(hours=1))).total == 0
    assert (await s.recordings.search(gov, "culverts", date_to=start + dt.timedelta(hours=1))).total == 1
    assert (await s.recordings.search(gov, "culverts", office_id=governor.office_id)).total == 1
    mr4 = next(o for o in await s.offices.list(CLI) if o.code == "MR-4")
    assert (await s.recordings.search(gov, "culverts", office_id=mr4.id)).total == 0
    assert (await s.recordings.search(gov, "culverts", meeting_id=session.id, limit=1)).total == 1


HOSTILE = ['"', '""', "AND OR", "NOT", "flood AND", "NEAR(flood", "*", "flood*", "culverts OR 1=1", "col:flood",
           "'; DROP TABLE recordings; --", "^flood", "(", ")", "-flood", 'a"b', "\\", "%", "{document}: x", "!!:"]


async def test_hostile_queries_find_nothing_or_are_refused(loaded: Services) -> None:
    s = loaded
    session = await meeting_of(s, MeetingKind.CABINET_SESSION)
    await closed_recording(s, session)
    gov = await as_(s, "governor")
    for query in HOSTILE:
        try:
            found = await s.recordings.search(gov, query)
        except ValidationFailed:
            continue
        assert found.total == len(found.recordings), query
    assert (await s.recordings.search(gov, 'flood"')).total == 1  # the word still counts


async def test_bad_search_input_is_refused(loaded: Services) -> None:
    gov = await as_(loaded, "governor")
    for query in ("", "   ", None, 42, "x" * 201, "a\x00b"):
        with pytest.raises(ValidationFailed):
            await loaded.recordings.search(gov, query)
    with pytest.raises(ValidationFailed):
        await loaded.recordings.search(gov, "x", limit=10**30)
    with pytest.raises(ValidationFailed):
        await loaded.recordings.search(gov, "x", date_from=dt.datetime(2026, 1, 1))  # naive


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query('flood "AND" OR') == '"flood" """AND""" "OR"'
    assert fts5_query('" * ( )') == ""
