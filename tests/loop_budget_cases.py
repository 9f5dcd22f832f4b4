"""Every client -> server signaling event, at its largest accepted size and just over it, against a live
server on loopback, with the longest loop hold of each message measured (tests/loop_probe.py).

Shared by tests/test_loop_budget.py (asserts the budget) and bench/loop_budget.py (prints the figures,
with a minimal-payload baseline). ``Scenario(minimal=True)`` sends the smallest valid payload of each
event instead of the largest, and skips the refused cases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio
from aiortc import RTCSessionDescription

from harness import LiveServer
from loop_probe import HoldProbe, Measured
from max_payloads import (PAD_KINDS, chromium_offer, fit_sdp, grow_answer, many_keys, minimal_offer,
                          publish_offer, wire_fit, wire_over)
from media.aiortc_seams import configure_ice
from sigclient import SigClient, loopback_pc
from signaling.floor_protocol import FLOOR_EVENTS
from signaling.protocol import CLIENT_EVENTS
from signaling.validation import MAX_PUBLISH_MEDIA, MAX_SDP_LINES

#: Every client event, with how it is covered (the test checks this list against signaling/protocol.py).
EVENTS = sorted(CLIENT_EVENTS)
LONGEST_ID = "p" * 64  # identifier() accepts up to 64 characters
TEXT_500 = "\u1780" * 500  # Khmer: 500 characters, 1500 bytes in UTF-8, the longest question or reason


@dataclass
class Case:
    name: str
    event: str
    refused: bool
    measured: Measured


class Scenario:
    def __init__(self, server: LiveServer, *, runs: int = 3, minimal: bool = False, settle: float = 0.08,
                 log: Callable[[str], None] | None = None, profile: bool = False, only: str = "") -> None:
        assert server._thread is not None and server._thread.ident is not None
        self.server = server
        self.probe = HoldProbe(server._thread.ident, profile=profile)
        self.only = only  # profile mode: the cases whose name contains this
        self.runs = runs
        self.minimal = minimal
        self.settle = settle
        self.cases: list[Case] = []
        self.clients: list[SigClient] = []
        self.pcs: list[Any] = []
        self.log = log or (lambda line: None)

    # -- plumbing ---------------------------------------------------------------------------
    async def client(self, username: str, join: dict[str, Any] | None = None) -> tuple[SigClient, dict[str, Any]]:
        c = SigClient(self.server.url)
        self.clients.append(c)
        await c.connect(await self.server.join_token(username))
        joined: dict[str, Any] = {}
        if join is not None:
            joined = await c.call("join", join)
            assert joined["ok"], joined
        return c, joined

    async def measure(self, name: str, client: SigClient, event: str, payload: Any, *,
                      expect: str | None = "ok", before: Callable[[], Awaitable[Any]] | None = None,
                      after: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
                      runs: int | None = None, settle: float | None = None) -> Measured:
        """Send ``event`` ``runs`` times, each in its own probe window (the reply, then ``settle`` seconds
        for what the message set off: broadcasts, renegotiations, spawned tasks)."""
        measured = Measured()
        for _ in range(runs or self.runs):
            if before is not None:
                await before()
            data = payload() if callable(payload) else payload
            await asyncio.sleep(0.02)  # let earlier work drain out of the window
            self.probe.start()
            try:
                reply = await client.call(event, data, timeout=30)
                await asyncio.sleep(self.settle if settle is None else settle)
            finally:
                stretch = self.probe.stop()
            measured.runs.append(stretch)
            if expect == "ok":
                assert reply.get("ok") is True, (name, reply)
            elif expect is not None:
                assert reply.get("ok") is False and reply["error"]["code"] == expect, (name, reply)
            if after is not None:
                await after(reply)
        self.cases.append(Case(name, event, expect != "ok", measured))
        self.log(f"{name:45s} cpu {measured.cpu_ms:7.2f} ms  no-gc {measured.work_ms:7.2f}  gc<= {measured.gc_ms:6.2f}  "
                 f"wall {measured.wall_ms:7.2f} ms  no-gc {measured.stall_ms:7.2f}  "
                 f"{measured.worst.what[:110]}")
        if self.probe.profile and self.only and self.only in name:
            self.log(measured.worst.profile)
        return measured

    async def refused_at_limit(self, client: SigClient, event: str, base: dict[str, Any] | None = None) -> None:
        """The event padded with an unknown field to the largest message the transport delivers: the
        server reads, decodes and measures all of it, then refuses it."""
        if self.minimal:
            return
        await self.measure(f"{event} (at limit, unknown field: refused)", client, event,
                           wire_fit(event, base or {}), expect="invalid", settle=0.02)

    async def close(self) -> None:
        for c in self.clients:
            try:
                await c.close()
            except Exception:  # noqa: BLE001
                pass
        for pc in self.pcs:
            await pc.close()

    # -- the scenario ----------------------------------------------------------------------
    async def run(self) -> list[Case]:
        self.probe.install()
        try:
            await self._run()
        finally:
            self.probe.uninstall()
            await self.close()
        return self.cases

    async def _run(self) -> None:
        small = self.minimal
        chair, c = await self.client("chair", {} if small else {"last_n": 64, "client": "room"})
        governor, g = await self.client("governor", {})
        secretariat, _ = await self.client("secretariat", {"client": "console"})
        gid = g["participant_id"]
        office_id, item_id = g["me"]["office_id"], c["agenda"]["items"][-1]["id"]

        # join: a new observer connection each run (the previous one is replaced).
        observer: list[SigClient] = []
        observer_ids: list[str] = []

        async def new_observer() -> None:
            o, _ = await self.client("observer")
            observer.append(o)

        await self.measure("join", _Last(observer), "join", {} if small else {"last_n": 64, "client": "console"},
                           before=new_observer, after=lambda reply: _append(observer_ids, reply["participant_id"]))
        o, _ = await self.client("observer")
        await self.refused_at_limit(o, "join")

        await self.measure("ping", governor, "ping", {})
        await self.refused_at_limit(governor, "ping")
        if not small:
            await self.measure("ping (many keys at limit: refused)", governor, "ping", many_keys("ping"),
                               expect="invalid", settle=0.02)

        # publish: a Chromium-shaped offer with the four media sections allowed, grown to the limits.
        async def restart_send() -> None:
            assert (await governor.call("restart", {"transport": "send"}))["ok"]

        async def published(reply: dict[str, Any]) -> None:
            assert reply["sdp"].startswith("v=0") and len(reply["producers"]) == MAX_PUBLISH_MEDIA, reply

        kinds = ["plain"] if small else list(PAD_KINDS)
        for kind in kinds:
            offer = minimal_offer() if small else publish_offer(kind)
            await self.measure(f"publish ({'minimal' if small else kind})", governor, "publish", {"sdp": offer},
                               before=restart_send, after=published)
        if not small:
            five = fit_sdp(chromium_offer(("audio", "video", "audio", "video", "video")), "ignored", event="publish")
            await self.measure("publish (5 m-lines at limit: refused)", governor, "publish", {"sdp": five},
                               expect="invalid", settle=0.02)
            lines = fit_sdp(chromium_offer(), "ignored", max_lines=MAX_SDP_LINES + 1, event="publish")
            await self.measure(f"publish ({MAX_SDP_LINES + 1} lines: refused)", governor, "publish",
                               {"sdp": lines}, expect="invalid", settle=0.02)
            for kind in ("ssrc", "rtpmap"):  # just past the caps on a=ssrc lines and codec x feedback pairs
                await self.measure(f"publish ({kind} just over its cap: refused)", governor, "publish",
                                   {"sdp": fit_sdp(chromium_offer(), kind, over=True)}, expect="invalid", settle=0.02)
            await self.refused_at_limit(governor, "publish", {"sdp": "v=0\r\n"})
            # The published state the rest of the scenario uses: four producers from the governor.
            await restart_send()
            assert (await governor.call("publish", {"sdp": publish_offer("ignored")}))["ok"]

        # subscribe and answer: the chair receives the governor's tracks.
        async def restart_recv() -> None:
            assert (await chair.call("restart", {"transport": "recv"}))["ok"]

        await self.measure("subscribe", chair, "subscribe", {} if small else {"videos": 8, "audios": 2},
                           before=restart_recv)
        await self.refused_at_limit(chair, "subscribe")
        pending: dict[str, Any] = {}

        async def fresh_offer() -> None:
            await restart_recv()
            offer = await chair.call("subscribe")
            assert offer["ok"] and offer["sdp"], offer
            pc = loopback_pc()
            self.pcs.append(pc)
            await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            configure_ice(pc, ["127.0.0.1"], [])
            await pc.setLocalDescription(await pc.createAnswer())
            pending.update(answer=pc.localDescription.sdp, revision=offer["revision"])

        def answer_of(kind: str) -> Callable[[], dict[str, Any]]:
            def build() -> dict[str, Any]:
                sdp = pending["answer"] if kind == "plain" else grow_answer(pending["answer"], kind, pending["revision"])
                return {"sdp": sdp, "revision": pending["revision"]}
            return build

        for kind in kinds:
            await self.measure(f"answer ({'minimal' if small else kind})", chair, "answer", answer_of(kind),
                               before=fresh_offer)
        if not small:
            def padded() -> dict[str, Any]:
                sdp = pending["answer"]
                extra = sdp[sdp.index("m=video"):].replace("a=mid:", "a=mid:x")
                return {"sdp": fit_sdp((sdp + extra).rstrip("\r\n").split("\r\n"), "ignored",
                                       extra={"revision": pending["revision"]}, event="answer"),
                        "revision": pending["revision"]}

            await self.measure("answer (extra m-line at limit: refused)", chair, "answer", padded,
                               before=fresh_offer, expect="invalid", settle=0.02)
            await self.refused_at_limit(chair, "answer", {"sdp": "v=0\r\n", "revision": 1})

        # The participant's own controls.
        await self.measure("mute", governor, "mute", {"kind": "video", "muted": True})
        await self.refused_at_limit(governor, "mute")
        await self.measure("set_last_n", chair, "set_last_n", {"n": 0 if small else 64})
        await self.refused_at_limit(chair, "set_last_n")
        # The site's choice and its view (signaling/links.py): each re-runs the site's budget.
        await self.measure("set_quality", chair, "set_quality", {"mode": "audio" if small else "low"},
                           after=lambda _reply: chair.call("set_quality", {"mode": "auto"}))
        await self.refused_at_limit(chair, "set_quality")
        views = {"stage-video": {"visible": True, "width": 640, "height": 360}}
        if not small:
            views.update({f"video-{i}": {"visible": i % 2 == 0, "width": 10_000, "height": 10_000} for i in range(8)})
        await self.measure("set_view", chair, "set_view", {"slots": views})
        await self.refused_at_limit(chair, "set_view")
        await self.measure("pin", chair, "pin", {"participant_id": gid})
        if not small:
            await self.measure("pin (longest unknown id: refused)", chair, "pin", {"participant_id": LONGEST_ID},
                               expect=None, settle=0.02)
            await self.refused_at_limit(chair, "pin", {"participant_id": None})
        await self.measure("raise_hand", governor, "raise_hand", {},
                           before=lambda: governor.call("lower_hand"))
        await self.refused_at_limit(governor, "raise_hand")
        await self.measure("lower_hand", governor, "lower_hand", {},
                           before=lambda: governor.call("raise_hand"))
        await self.refused_at_limit(governor, "lower_hand")
        await self.measure("stats", governor, "stats", {} if small else
                           {"rtt_ms": 60_000, "loss_percent": 100, "bitrate_kbps": 1_000_000})
        await self.refused_at_limit(governor, "stats")

        # Moderation (the chair).
        for action, extra in (("mute", {"participant_id": gid}), ("unmute", {"participant_id": gid}),
                              ("lower_hand", {"participant_id": gid}), ("lock", {}), ("unlock", {}),
                              ("lobby_on", {}), ("lobby_off", {}), ("spotlight", {"participant_id": gid}),
                              ("spotlight_off", {})):
            await self.measure(f"moderate {action}", chair, "moderate", {"action": action, **extra})
        if not small:
            await self.measure("moderate admit (longest unknown id: refused)", chair, "moderate",
                               {"action": "admit", "participant_id": LONGEST_ID}, expect=None, settle=0.02)
            await self.refused_at_limit(chair, "moderate", {"action": "mute"})
        await self.measure("set_agenda_item", chair, "set_agenda_item", {"item_id": item_id})
        if not small:
            await self.measure("set_agenda_item (largest id: refused)", chair, "set_agenda_item",
                               {"item_id": 2**31}, expect=None, settle=0.02)
            await self.refused_at_limit(chair, "set_agenda_item", {"item_id": None})

        # Votes: open, cast, state, close, once per run.
        question = "Q" if small else TEXT_500
        vote: dict[str, int] = {}

        async def opened(reply: dict[str, Any]) -> None:
            vote["id"] = reply["vote_id"]

        async def close_vote() -> None:
            if "id" in vote:
                await chair.call("vote_close", {"vote_id": vote.pop("id")})

        await self.measure("vote_open", chair, "vote_open", {"item_id": item_id, "question": question},
                           before=close_vote, after=opened)
        await self.measure("vote_cast", governor, "vote_cast", lambda: {"vote_id": vote["id"], "choice": "abstain"})
        await self.measure("vote_state", governor, "vote_state", {})

        async def reopen() -> None:
            await close_vote()
            reply = await chair.call("vote_open", {"item_id": item_id, "question": question})
            vote["id"] = reply["vote_id"]
            await governor.call("vote_cast", {"vote_id": vote["id"], "choice": "yes"})

        async def closed(reply: dict[str, Any]) -> None:
            vote.pop("id", None)

        await self.measure("vote_close", chair, "vote_close", lambda: {"vote_id": vote["id"]}, before=reopen,
                           after=closed)
        if not small:
            await self.measure("vote_open (question of 501: refused)", chair, "vote_open",
                               {"item_id": item_id, "question": TEXT_500 + "Q"}, expect="invalid", settle=0.02)
            for event in ("vote_open", "vote_cast", "vote_close", "vote_state"):
                await self.refused_at_limit(chair, event)

        # Running the session: open once, floor, roll call, excuse, register, close once.
        await self.measure("session open", chair, "session", {"action": "open"}, runs=1)
        limit = {} if small else {"limit_seconds": 4 * 3600}
        await self.measure("floor grant", chair, "floor", {"action": "grant", "participant_id": gid, **limit})
        await self.measure("floor yield", governor, "floor", {"action": "yield"},
                           before=lambda: chair.call("floor", {"action": "grant", "participant_id": gid, **limit}))
        await self.measure("floor revoke", chair, "floor", {"action": "revoke"},
                           before=lambda: chair.call("floor", {"action": "grant", "participant_id": gid, **limit}))
        await self.measure("roll_call start", chair, "roll_call", {"action": "start"},
                           before=lambda: chair.call("roll_call", {"action": "close"}))
        await self.measure("roll_call answer", governor, "roll_call", {"action": "answer"}, expect=None)
        await self.measure("roll_call close", chair, "roll_call", {"action": "close"},
                           before=lambda: chair.call("roll_call", {"action": "start"}))
        await self.measure("excuse", secretariat, "excuse", {"office_id": office_id, "reason": "ill" if small
                                                             else TEXT_500})
        await self.measure("register", chair, "register", {})
        if not small:
            await self.measure("excuse (reason of 501: refused)", secretariat, "excuse",
                               {"office_id": office_id, "reason": TEXT_500 + "x"}, expect="invalid", settle=0.02)
            await self.measure("floor grant (longest unknown id: refused)", chair, "floor",
                               {"action": "grant", "participant_id": LONGEST_ID}, expect="wrong_state", settle=0.02)
            for event in sorted(FLOOR_EVENTS):
                await self.refused_at_limit(chair, event)

        # Leaving: restart (send), the moderator's removal, leave, and a frame over the transport limit.
        await self.measure("restart", governor, "restart", {"transport": "send"})
        await self.refused_at_limit(governor, "restart")
        await self.measure("moderate remove", chair, "moderate", {"action": "remove", "participant_id":
                                                                   observer_ids[-1]}, runs=1)
        leaving: list[SigClient] = []

        async def joined_secretariat_console() -> None:
            s, _ = await self.client("secretariat", {"client": "console"})
            leaving.append(s)

        await self.measure("leave", _Last(leaving), "leave", {}, before=joined_secretariat_console)
        await self.refused_at_limit(governor, "leave")
        if not small:
            await self._over_transport_limit()
        await self.measure("session close", chair, "session", {"action": "close"}, runs=1)

    async def _over_transport_limit(self) -> None:
        """One byte over the largest frame the transport takes: aiohttp refuses it and the server closes
        the connection (measured on a connection of its own)."""
        measured = Measured()
        for _ in range(self.runs):
            c, _ = await self.client("governor")
            await asyncio.sleep(0.02)
            self.probe.start()
            try:
                try:
                    await c.call("publish", wire_over("publish", {"sdp": "v=0\r\n"}), timeout=3)
                except (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError):
                    pass
                await asyncio.sleep(0.05)
            finally:
                measured.runs.append(self.probe.stop())
        self.cases.append(Case("publish (1 byte over the transport limit: dropped)", "publish", True, measured))
        self.log(f"{'publish (over transport limit)':45s} cpu {measured.cpu_ms:7.2f} ms  wall {measured.wall_ms:7.2f} ms")


async def _append(items: list[Any], item: Any) -> None:
    items.append(item)


class _Last:
    """The newest client of a list, for cases that need a fresh connection each run."""

    def __init__(self, clients: list[SigClient]) -> None:
        self.clients = clients

    async def call(self, event: str, data: Any = None, timeout: float = 15) -> Any:
        return await self.clients[-1].call(event, data, timeout)


__all__ = ["Case", "Scenario", "EVENTS"]
