"""Decisions, votes and minutes over the real server: signaling votes, a permission matrix over every
new action (allowed and refused), the lock after approval, and the PDF and CSV exports."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pypdf
import pytest

from harness import Client, LiveServer
from meetings.models import Meeting
from meetings.policy import Caller
from meetings.services.register import load_register
from sigclient import SigClient
from web.exports import register_csv, safe_cell

ROLES = ["secretariat", "chair", "governor", "commander", "observer"]
CLI = Caller.cli()


@pytest.fixture(scope="module")
def ids(live_server: LiveServer) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        services = live_server.services()
        try:
            offices = {o.code: o.id for o in await services.offices.list(CLI)}
            meeting = next(m for m in await services.meetings.list_visible(CLI) if m.kind.value == "cabinet_session")
            deputy = await services.people.create(CLI, username="deputy", full_name="Deputy of Siem Reap",
                                                  office_id=offices["KH-17"], roles=["delegate"],
                                                  password="a-long-password-9")
            return {"session": meeting.id, "items": [i.id for i in meeting.agenda], "kh17": offices["KH-17"],
                    "deputy": deputy.id}
        finally:
            await services.db.dispose()

    return asyncio.run(read())


async def joined(live_server: LiveServer, username: str) -> SigClient:
    client = SigClient(live_server.url)
    client.sio.on("vote", client._recorder("vote"))
    await client.connect(await live_server.join_token(username))
    reply = await client.call("join", {"client": "room"})
    assert reply["ok"] and not reply["lobby"], reply
    return client


async def test_votes_through_signaling(live_server: LiveServer, ids: dict[str, Any]) -> None:
    item = ids["items"][2]
    clients = {u: await joined(live_server, u) for u in ("chair", "governor", "deputy", "observer")}
    chair, gov, deputy, obs = clients["chair"], clients["governor"], clients["deputy"], clients["observer"]
    try:
        # Three sites are connected (the chair's, Siem Reap twice, the observer's): the live session
        # records their attendance from these very connections.
        services = live_server.services()
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                async with services.db.read() as session:
                    meeting = await session.get(Meeting, ids["session"])
                    present = (await load_register(session, meeting)).quorum.present
                if present == 3 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert present == 3
        finally:
            await services.db.dispose()
        refused = await gov.call("vote_open", {"item_id": item, "question": "Adopt?"})
        assert refused["error"]["code"] == "forbidden"
        assert (await chair.call("vote_open", {"item_id": item, "question": ""}))["error"]["code"] == "invalid"
        opened = await chair.call("vote_open", {"item_id": item, "question": "Adopt the second tranche?"})
        assert opened["ok"], opened
        vote_id = opened["vote_id"]
        pushed = await gov.wait_for("vote", lambda v: v["id"] == vote_id)
        assert pushed["open"] and pushed["quorum"]["present"] == 3 and "ballots" not in pushed
        assert (await obs.call("vote_cast", {"vote_id": vote_id, "choice": "yes"}))["error"]["code"] == "forbidden"
        assert (await gov.call("vote_cast", {"vote_id": vote_id, "choice": "maybe"}))["error"]["code"] == "invalid"
        assert (await gov.call("vote_cast", {"vote_id": vote_id, "choice": "yes"}))["ok"]
        assert (await deputy.call("vote_cast", {"vote_id": vote_id, "choice": "no"}))["ok"]  # replaces Siem Reap's
        tally = await chair.wait_for("vote", lambda v: v["id"] == vote_id and v["tally"]["cast"] == 1
                                     and v.get("ballots") and v["ballots"][0]["choice"] == "no")
        assert tally["ballots"] == [{"office_id": ids["kh17"], "choice": "no", "office": "Siem Reap",
                                     "office_km": tally["ballots"][0]["office_km"]}]
        # A new connection (a reload, or after a server restart) finds the open vote in the database.
        state = await gov.call("vote_state")
        assert state["vote"]["id"] == vote_id and state["my_site_choice"] == "no"
        assert (await gov.call("vote_close", {"vote_id": vote_id}))["error"]["code"] == "forbidden"
        closed = await chair.call("vote_close", {"vote_id": vote_id})
        assert closed["ok"] and closed["vote"]["tally"] == {"yes": 0, "no": 1, "abstain": 0, "cast": 1}
        final = await obs.wait_for("vote", lambda v: v["id"] == vote_id and not v["open"])
        assert final["ballots"][0]["choice"] == "no"  # once closed, everyone sees each site's ballot
        assert (await gov.call("vote_cast", {"vote_id": vote_id, "choice": "yes"}))["error"]["code"] == "conflict"
        assert (await gov.call("vote_state"))["vote"] is None
    finally:
        for client in clients.values():
            await client.close()
    async with Client(live_server.url) as web:
        await web.login("governor")
        status, body = await web.api("GET", f"/api/meetings/{ids['session']}/votes")
        assert status == 200 and body["votes"][0]["quorum"]["present"] == 3 and body["votes"][0]["ballots"]


async def test_permission_matrix_and_lock(live_server: LiveServer, ids: dict[str, Any]) -> None:
    s, items = ids["session"], ids["items"]
    failures: list[str] = []
    clients: dict[str, Client] = {}
    for role in ROLES:
        clients[role] = Client(live_server.url)
        await clients[role].login(role)
    hidden = {"commander": 404}  # the session does not exist for the uninvited commander

    async def check(method: str, path: str, body: Any, expected: dict[str, int], order: list[str] | None = None,
                    form: bool = False) -> dict[str, Any]:
        replies = {}
        for role in order or ROLES:
            client = clients[role]
            if form:
                response = await client.form(path, body)
                status, reply = response.status, None
            elif method == "GET" and not path.startswith("/api/"):
                async with client.http.get(path, allow_redirects=False) as response:
                    await response.read()
                    status, reply = response.status, None
            else:
                status, reply = await client.api(method, path, body)
            replies[role] = reply
            if status != expected[role]:
                failures.append(f"{role} {method} {path}: {status} {reply}, expected {expected[role]}")
        return replies

    def only(allowed: set[str], ok: int = 200, refused: int = 403) -> dict[str, int]:
        return {r: ok if r in allowed else refused for r in ROLES} | hidden

    runners = {"secretariat", "chair"}
    viewers = set(ROLES) - {"commander"}
    await check("PUT", f"/api/meetings/{s}/items/{items[1]}/decision",
                {"outcome": "adopted", "text": "Adopted as presented."}, only(runners))
    await check("POST", f"/meetings/{s}/items/{items[3]}/decision", {"outcome": "deferred", "text": "Next week"},
                only(runners, 303), form=True)
    await check("PUT", f"/api/meetings/{s}/items/{items[1]}/decision", {"outcome": "passed"},
                only(set()) | {"secretariat": 400, "chair": 400})
    await check("GET", f"/api/meetings/{s}/decisions", None, only(viewers))
    await check("GET", f"/api/meetings/{s}/votes", None, only(viewers))
    await check("GET", f"/meetings/{s}/minutes", None, only(viewers))
    await check("GET", f"/api/meetings/{s}/minutes", None, only(set(), refused=404))
    # Drafting: the secretariat only (last, so the others' refusals see no minutes yet).
    order = ["chair", "governor", "observer", "commander", "secretariat"]
    await check("POST", f"/api/meetings/{s}/minutes", None, only({"secretariat"}, 201), order=order)
    await check("GET", f"/api/meetings/{s}/minutes", None, only(runners, refused=404))
    await check("GET", f"/meetings/{s}/minutes.pdf", None, only(runners, refused=404))
    await check("GET", f"/meetings/{s}/minutes/print", None, only(runners, refused=404))
    edit = {"version": 1, "note": "Held by video link with every province.",
            "summaries": {str(items[1]): "=HYPERLINK(\"x\") presented by the minister."}}
    await check("PATCH", f"/api/meetings/{s}/minutes", edit, only({"secretariat"}), order=order)
    await check("POST", f"/meetings/{s}/minutes/draft", {}, only({"secretariat"}, 303), order=order, form=True)
    # The register, live or exported, has one rule: those who run the session until the minutes are
    # approved, then everyone who may see the meeting (the approved minutes carry the same attendance).
    await check("GET", f"/meetings/{s}/attendance.csv", None, only(runners))
    await check("GET", f"/api/meetings/{s}/register", None, only(runners))
    assert "attendance.csv" not in (await clients["observer"].page(f"/meetings/{s}"))[1]
    assert "attendance.csv" in (await clients["chair"].page(f"/meetings/{s}"))[1]
    # Approval: confirmation required; stale versions refused; then only the secretariat.
    response = await clients["secretariat"].form(f"/meetings/{s}/minutes/approve", {"version": "3"})
    assert response.status == 400
    await check("POST", f"/api/meetings/{s}/minutes/approve", {"version": 1}, only(set()) | {"secretariat": 409})
    await check("POST", f"/meetings/{s}/minutes/approve", {"version": "3", "confirm": "yes"},
                only({"secretariat"}, 303), order=order, form=True)
    # Approved: everyone who may see the meeting reads it; nobody changes it.
    replies = await check("GET", f"/api/meetings/{s}/minutes", None, only(viewers))
    approved = replies["governor"]["minutes"]
    assert approved["state"] == "approved" and len(approved["sha256"]) == 64
    assert approved["body"]["note"] == "Held by video link with every province."
    await check("PATCH", f"/api/meetings/{s}/minutes", {**edit, "version": 3}, only(set()) | {"secretariat": 409})
    await check("POST", f"/api/meetings/{s}/minutes", None, only(set()) | {"secretariat": 409})
    await check("PUT", f"/api/meetings/{s}/items/{items[1]}/decision", {"outcome": "rejected"},
                only(set()) | {"secretariat": 409, "chair": 409})
    await check("GET", f"/meetings/{s}/attendance.csv", None, only(viewers))
    await check("GET", f"/api/meetings/{s}/register", None, only(viewers))
    assert "attendance.csv" in (await clients["observer"].page(f"/meetings/{s}"))[1]
    replies = await check("GET", f"/api/meetings/{s}/minutes/verify", None, only(viewers))
    assert replies["observer"]["ok"] and replies["observer"]["audited"] == approved["sha256"]
    status, page = await clients["governor"].page(f"/meetings/{s}/minutes")
    assert approved["sha256"] in page and 'data-ok="true"' in page and "minutes-edit" not in page
    status, page = await clients["governor"].page(f"/meetings/{s}")
    assert "Adopted as presented." in page and 'action="/meetings/' not in page.split('id="decisions"')[1]
    status, page = await clients["chair"].page(f"/meetings/{s}?lang=km")
    assert "កត់ត្រាសេចក្តីសម្រេច" in page and "បានអនុម័ត" in page
    # Exports.
    async with clients["observer"].http.get(f"/meetings/{s}/minutes.pdf") as response:
        assert response.status == 200 and response.content_type == "application/pdf"
        pdf = await response.read()
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Weekly Cabinet Session" in text and approved["sha256"] in text.replace("\n", "")
    async with clients["governor"].http.get(f"/meetings/{s}/attendance.csv") as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
        raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    sites = {r["office_code"]: r for r in rows if not r["person"]}
    assert sites["KH-17"]["status"] == "present" and sites["KH-1"]["status"] == "absent"
    assert any(r["person"] == "Keo Sreymom (Governor of Siem Reap)" for r in rows)
    for client in clients.values():
        await client.http.close()
    assert not failures, "\n".join(failures)


def test_csv_neutralises_formulas_and_quotes() -> None:
    assert [safe_cell(v) for v in ("=1+1", "+3", "-2", "@SUM(A1)", "ok", None, 5)] == [
        "'=1+1", "'+3", "'-2", "'@SUM(A1)", "ok", "", "5"]
    attendance = {"sites": [{"office": {"code": "X", "name_en": '=cmd|"/c calc"!A1', "name_km": "ខេត្ត, \"ក\""},
                             "status": "absent", "intervals": [], "first_arrival": None, "last_departure": None,
                             "minutes_present": 0, "late_minutes": None, "left_early_minutes": None,
                             "excused": "-sick", "people": []}]}
    rows = list(csv.reader(io.StringIO(register_csv(attendance).decode("utf-8-sig"))))
    assert rows[1][:3] == ["X", "'=cmd|\"/c calc\"!A1", "ខេត្ត, \"ក\""] and rows[1][-1] == "'-sick"
