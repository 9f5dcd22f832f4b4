"""Decisions, votes and minutes through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text, update
from test_audit import truncate

import record_fixtures as rf
from meetings import demo
from meetings.audit_checkpoints import scan
from meetings.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from meetings.models import AuditEvent, Meeting, MeetingKind
from meetings.models.decisions import Minutes, MinutesState
from meetings.policy import Caller
from meetings.services import Services
from meetings.services.common import principal_of

CLI = Caller.cli()
#: The demo session, a Friday 08:00 Phnom Penh one to two weeks ago (the record lies in the past).
LOADED_AT = dt.datetime.now(dt.UTC) - dt.timedelta(days=14)
START = demo.next_friday_0800(LOADED_AT).astimezone(dt.UTC)


def at(minutes: float) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


async def as_(services: Services, username: str) -> Caller:
    return Caller(principal_of(await services.people.find(CLI, username)), "127.0.0.1")


@pytest.fixture
async def loaded(services: Services) -> Services:
    await demo.load(services, now=LOADED_AT)
    return services


async def session_of(services: Services) -> Meeting:
    return next(m for m in await services.meetings.list_visible(CLI)
                if m.kind is MeetingKind.CABINET_SESSION and m.agenda)  # the next session, with its agenda


async def audit_actions(services: Services, prefix: str) -> list[AuditEvent]:
    return list(await services.audit.recent(CLI, limit=200, action_prefix=prefix))


async def test_decisions_by_role_validated_and_audited(loaded: Services) -> None:
    s = loaded
    meeting = await session_of(s)
    item = meeting.agenda[1].id
    chair, sec, gov, obs = [await as_(s, u) for u in ("chair", "secretariat", "governor", "observer")]
    d = await s.decisions.record(chair, meeting.id, item, outcome="deferred", text="Back to the ministry.")
    assert (d.outcome.value, d.text, d.en_bloc) == ("deferred", "Back to the ministry.", False)
    for who in (gov, obs):
        with pytest.raises(PermissionDenied):
            await s.decisions.record(who, meeting.id, item, outcome="rejected")
    with pytest.raises(ValidationFailed):
        await s.decisions.record(sec, meeting.id, item, outcome="approved")
    with pytest.raises(ValidationFailed):
        await s.decisions.record(sec, meeting.id, item, outcome="adopted", text="x" * 4001)
    with pytest.raises(ValidationFailed):
        await s.decisions.record(sec, meeting.id, 99999, outcome="adopted")
    d = await s.decisions.record(sec, meeting.id, item, outcome="adopted_with_amendments", text="Article 4 amended.")
    [only] = await s.decisions.list(gov, meeting.id)
    assert (only.outcome.value, only.text) == ("adopted_with_amendments", "Article 4 amended.")
    events = await audit_actions(s, "decision.")
    assert [e.action for e in events][:2] == ["decision.change", "decision.record"]
    change = json.loads(events[0].details)
    assert change["old"]["outcome"] == "deferred" and change["new"]["outcome"] == "adopted_with_amendments"
    commander = await as_(s, "commander")
    with pytest.raises(NotFound):  # a session the commander is not invited to does not exist for them
        await s.decisions.list(commander, meeting.id)


async def test_vote_quorum_snapshot_one_ballot_per_office_and_close(loaded: Services) -> None:
    s = loaded
    meeting = await session_of(s)
    item = meeting.agenda[2].id
    chair, gov, obs, sec = [await as_(s, u) for u in ("chair", "governor", "observer", "secretariat")]
    kh17 = gov.principal.office_id  # type: ignore[union-attr]
    deputy = await s.people.create(CLI, username="deputy", full_name="Deputy of Siem Reap", office_id=kh17,
                                   roles=["delegate"], password="a-long-password-9")
    deputy_caller = Caller(principal_of(deputy), "127.0.0.1")
    now = dt.datetime.now(dt.UTC)
    await rf.connect(s, meeting.id, gov.actor_id, kh17, now - dt.timedelta(minutes=5))  # type: ignore[arg-type]
    await rf.connect(s, meeting.id, sec.actor_id, sec.office_id, now - dt.timedelta(minutes=5))  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        await s.votes.open(gov, meeting.id, item, "Adopt?")
    with pytest.raises(ValidationFailed):
        await s.votes.open(chair, meeting.id, item, "   ")
    vote = await s.votes.open(chair, meeting.id, item, "Adopt the second tranche?")
    invited = len({i.office_id for i in meeting.invitations if i.office_id} | {meeting.host_office_id})
    assert (vote.sites_present, vote.sites_invited) == (2, invited)
    assert vote.quorum_required == -(-invited // 2) and vote.quorum_met is False
    with pytest.raises(Conflict):
        await s.votes.open(chair, meeting.id, item, "A second one at once?")
    await s.votes.cast(gov, vote.id, "yes")
    vote = await s.votes.cast(deputy_caller, vote.id, "no")  # same office: replaces
    assert [(b.office_id, b.choice.value) for b in vote.ballots] == [(kh17, "no")]
    with pytest.raises(PermissionDenied):
        await s.votes.cast(obs, vote.id, "yes")
    with pytest.raises(ValidationFailed):
        await s.votes.cast(gov, vote.id, "maybe")
    await s.votes.cast(chair, vote.id, "abstain")
    with pytest.raises(PermissionDenied):
        await s.votes.close(gov, vote.id)
    closed = await s.votes.close(chair, vote.id)
    assert closed.closed_at is not None and len(closed.ballots) == 2
    with pytest.raises(Conflict):
        await s.votes.cast(gov, vote.id, "yes")
    with pytest.raises(Conflict):
        await s.votes.close(chair, vote.id)
    actions = [e.action for e in await audit_actions(s, "vote.")]
    assert actions[0] == "vote.close" and actions.count("vote.ballot") == 3 and actions[-1] == "vote.open"
    opened = json.loads((await audit_actions(s, "vote.open"))[0].details)
    assert opened["quorum"] == {"present": 2, "invited": invited, "required": vote.quorum_required, "met": False}


async def build_record(s: Services) -> dict[str, int]:
    """A session as the live record would hold it: opened, items run, people spoke, a vote, closed."""
    meeting = await session_of(s)
    sec, chair, gov = [await as_(s, u) for u in ("secretariat", "chair", "governor")]
    ids = {o.code: o.id for o in await s.offices.list(CLI)}
    items = [i.id for i in meeting.agenda]
    await rf.open_session(s, meeting.id, at(-2))
    await rf.connect(s, meeting.id, sec.actor_id, ids["OCM"], at(-10))  # type: ignore[arg-type]
    await rf.connect(s, meeting.id, chair.actor_id, ids["OCM"], at(-5))  # type: ignore[arg-type]
    await rf.connect(s, meeting.id, gov.actor_id, ids["KH-17"], at(12), at(100))  # type: ignore[arg-type]
    await rf.excuse_office(s, meeting.id, ids["MOH"] if "MOH" in ids else ids["MEF"], "Abroad", sec.actor_id)  # type: ignore[arg-type]
    await rf.adopt_en_bloc(s, meeting.id, items[0], sec.actor_id)  # type: ignore[arg-type]
    await rf.item_times(s, items[0], at(0), at(3))
    await rf.item_times(s, items[1], at(3), at(40))
    await rf.grant_floor(s, meeting.id, items[1], chair.actor_id, ids["OCM"], at(4), at(9))  # type: ignore[arg-type]
    await rf.grant_floor(s, meeting.id, items[1], gov.actor_id, ids["KH-17"], at(15), at(22))  # type: ignore[arg-type]
    await s.decisions.record(chair, meeting.id, items[1], outcome="adopted_with_amendments",
                             text="Adopted; article 4 as amended by Siem Reap.")
    vote = await s.votes.open(chair, meeting.id, items[1], "Adopt the sub-decree as amended?")
    await s.votes.cast(gov, vote.id, "yes")
    await s.votes.close(chair, vote.id)
    await rf.close_session(s, meeting.id, at(180))
    return {"meeting": meeting.id, "vote": vote.id, "kh17": ids["KH-17"], "ocm": ids["OCM"],
            **{f"item{n}": i for n, i in enumerate(items)}}


async def test_minutes_drafted_from_the_record(loaded: Services) -> None:
    s = loaded
    r = await build_record(s)
    sec = await as_(s, "secretariat")
    minutes = await s.minutes.draft(sec, r["meeting"])
    body = json.loads(minutes.body)
    assert body["meeting"]["opened_at"] == at(-2).isoformat() and body["meeting"]["closed_at"] == at(180).isoformat()
    first, second = body["items"][0], body["items"][1]
    assert first["decision"] == {"outcome": "adopted", "text": "", "en_bloc": True, "vote_id": None}
    assert (second["started_at"], second["ended_at"]) == (at(3).isoformat(), at(40).isoformat())
    assert [(sp["person"], sp["office"]["code"], sp["seconds"]) for sp in second["speakers"]] == [
        ("Chan Sophal (Chair)", "OCM", 300), ("Keo Sreymom (Governor of Siem Reap)", "KH-17", 420)]
    assert second["decision"]["outcome"] == "adopted_with_amendments"
    [vote] = second["votes"]
    assert vote["tally"] == {"yes": 1, "no": 0, "abstain": 0}
    assert [(b["office"]["code"], b["choice"]) for b in vote["ballots"]] == [("KH-17", "yes")]
    assert vote["quorum"]["present"] == 1  # only real-time connections count at the moment the vote opened
    sites = {site["office"]["code"]: site for site in body["attendance"]["sites"]}
    assert sites["OCM"]["status"] == "present" and sites["OCM"]["minutes_present"] == 190
    assert sites["KH-17"]["status"] == "late_left_early" and sites["KH-17"]["late_minutes"] == 12
    assert sites["KH-17"]["left_early_minutes"] == 80
    assert [p["name"] for p in sites["OCM"]["people"]] == ["Chan Sophal (Chair)", "Sok Dara (Secretariat)"]
    excused = [site for site in sites.values() if site["status"] == "excused"]
    assert len(excused) == 1 and excused[0]["excused"] == "Abroad"
    assert sites["MOINFO"]["status"] == "absent"
    assert body["attendance"]["quorum"]["present"] == 0  # after closing, nobody is present any more
    assert "KH-17" in sites and all(site["invited"] for site in sites.values())


async def test_edit_approve_lock(loaded: Services) -> None:
    s = loaded
    r = await build_record(s)
    sec, chair, gov = [await as_(s, u) for u in ("secretariat", "chair", "governor")]
    m = await s.minutes.draft(sec, r["meeting"])
    assert await s.minutes.get(gov, r["meeting"]) is None  # drafts are not for delegates
    assert (await s.minutes.get(chair, r["meeting"])) is not None
    with pytest.raises(PermissionDenied):
        await s.minutes.edit(chair, r["meeting"], version=m.version, note="Chair's note")
    with pytest.raises(ValidationFailed):
        await s.minutes.edit(sec, r["meeting"], version=m.version, summaries={str(r["item1"]): "x" * 10_001})
    with pytest.raises(ValidationFailed):
        await s.minutes.edit(sec, r["meeting"], version=m.version, summaries={"999999": "?"})
    m = await s.minutes.edit(sec, r["meeting"], version=m.version, note="Held by video link.",
                             summaries={str(r["item1"]): "The minister presented the draft.\nDiscussion followed."})
    assert m.version == 2
    with pytest.raises(Conflict):  # stale version
        await s.minutes.edit(sec, r["meeting"], version=1, note="Lost update")
    m = await s.minutes.draft(sec, r["meeting"])  # redraft from the record keeps the edited text
    body = json.loads(m.body)
    assert m.version == 3 and body["note"] == "Held by video link."
    assert body["items"][1]["summary"] == "The minister presented the draft.\nDiscussion followed."
    with pytest.raises(PermissionDenied):
        await s.minutes.approve(chair, r["meeting"], version=3)
    m = await s.minutes.approve(sec, r["meeting"], version=3)
    assert m.state is MinutesState.APPROVED and len(m.sha256) == 64
    # Locked: the services refuse every change to the record ...
    with pytest.raises(Conflict):
        await s.minutes.edit(sec, r["meeting"], version=3, note="After the fact")
    with pytest.raises(Conflict):
        await s.minutes.draft(sec, r["meeting"])
    with pytest.raises(Conflict):
        await s.minutes.approve(sec, r["meeting"], version=3)
    with pytest.raises(Conflict):
        await s.decisions.record(chair, r["meeting"], r["item1"], outcome="rejected")
    with pytest.raises(Conflict):
        await s.votes.open(chair, r["meeting"], r["item2"], "Late vote?")
    # ... and the database refuses a direct UPDATE or DELETE.
    for statement in ("UPDATE minutes SET body = '{}' WHERE id = :id", "DELETE FROM minutes WHERE id = :id"):
        with pytest.raises(Exception, match="approved minutes"):
            async with s.db.write() as uow:
                await uow.session.execute(text(statement), {"id": m.id})
    with pytest.raises(Exception, match="approved minutes"):
        async with s.db.write() as uow:
            await uow.session.execute(update(Minutes).where(Minutes.id == m.id).values(state="draft"))
    # Approved minutes are for everyone who may see the meeting; the hash matches the audit trail.
    seen = await s.minutes.get(gov, r["meeting"])
    assert seen is not None and seen.body == m.body
    check = await s.minutes.verify(gov, r["meeting"])
    assert check.ok and check.audited == m.sha256 == check.computed
    [event] = await audit_actions(s, "minutes.approve")
    assert json.loads(event.details)["sha256"] == m.sha256
    assert (await s.audit.verify(CLI)).ok
    # The approved minutes carry a signed checkpoint of the trail as it stood at approval; verify holds
    # the trail to it (these services keep no checkpoint file), so cutting the tail back past it shows.
    [checkpoint] = scan(m.audit_checkpoint, "minutes")
    assert s.db.audit_trail is not None and s.db.audit_trail.signer.valid(checkpoint)
    assert checkpoint.seq == event.seq - 1
    assert (await s.audit.verify(CLI)).checkpoint_seq == checkpoint.seq
    before = (await s.audit.recent(CLI, before_seq=checkpoint.seq, limit=1))[0]
    truncate(s.db.url, before.seq, before.hash)
    result = await s.audit.verify(CLI)
    assert not result.ok and "approved minutes of meeting" in result.problem
