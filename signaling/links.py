"""Each site's link as the server adapts to it: the site's choice, what its page shows, and the
states reported back (issue 13, poor provincial links).

Per participant the receiving connection's budget (media/site_budget.py) decides what each slot
carries. This module is the room's side of it:

- ``set_quality {mode}`` (``auto`` | ``low`` | ``audio``; also ``quality`` in ``join``): the site's
  choice, kept on the participant across a rebuilt receiving connection;
- ``set_view {slots: {slot_id: {visible, width?, height?}}}``: which tiles the page shows and how big;
  a hidden tile's slot is paused on request, so the server never sends what is not shown;
- ``slot_state`` to the participant whenever a slot's state changes (and every 2 s): the estimate,
  loss, choice, and per slot ``{state, layer}`` with one precedence rule (empty > paused_request >
  paused_bandwidth > active), so the page can say "video paused: weak link";
- ``links {sites}`` to the room at most every :data:`LINKS_INTERVAL_S` when something changed: per
  participant the estimate, loss, choice, stage layer and a one-word state (``good`` | ``reduced`` |
  ``weak`` | ``audio_only``) for the participants panel and the console.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from media import WebRtcTransport
from media.allocation import MODES
from media.site_budget import SiteState, SlotView
from media.slot_assignment import STAGE_VIDEO
from signaling.errors import InvalidMessage, WrongState
from signaling.participant import Participant

if TYPE_CHECKING:
    from signaling.room import Room

LINKS_INTERVAL_S = 3.0


def site_summary(state: SiteState) -> dict[str, Any]:
    """What the participants panel shows of one site's link."""
    stage_state, stage_layer = state.slots.get(STAGE_VIDEO, ("empty", -1))
    if state.mode == "audio":
        word = "audio_only"
    elif stage_state == "paused_bandwidth":
        word = "weak"
    elif state.weak() or (stage_state == "active" and stage_layer < 2 and state.mode == "auto"):
        word = "reduced"
    else:
        word = "good"
    return {"estimate_kbps": round(state.estimate / 1000), "sending_kbps": round(state.sending / 1000),
            "loss_percent": round(state.loss * 100, 1), "mode": state.mode, "stage_layer": stage_layer,
            "state": word}


def slot_state_payload(state: SiteState) -> dict[str, Any]:
    return {"estimate_kbps": round(state.estimate / 1000), "loss_percent": round(state.loss * 100, 1),
            "mode": state.mode, "probing": state.probing, "red": state.red, "rtt_ms": state.rtt_ms,
            "slots": {slot_id: {"state": s, "layer": layer} for slot_id, (s, layer) in state.slots.items()}}


class RoomLinks:
    """The room's view of its sites' links (see the module docstring)."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.sites: dict[str, dict[str, Any]] = {}
        self._dirty = False
        self._last_broadcast = -1e9
        self._timer: asyncio.TimerHandle | None = None

    def attach(self, participant: Participant, recv: WebRtcTransport) -> None:
        """The participant's receiving connection and its budget exist: apply the site's choice and
        report what the budget does."""
        budget = recv.budget
        if budget is None:
            return
        budget.set_mode(participant.link_mode)  # type: ignore[arg-type]
        budget.on("state", lambda state: self._on_state(participant, recv, state))

    def _on_state(self, participant: Participant, recv: WebRtcTransport, state: SiteState) -> None:
        room = self.room
        if participant.recv is not recv or participant.id not in room.participants:
            return
        if not participant.awaiting_answer:
            room._spawn(room.outbox.to(participant, "slot_state", slot_state_payload(state)))
        summary = site_summary(state)
        if self.sites.get(participant.id) != summary:
            self.sites[participant.id] = summary
            self._changed()

    def set_mode(self, participant: Participant, mode: str) -> None:
        if mode not in MODES:
            raise InvalidMessage(f"mode must be one of {', '.join(MODES)}")
        participant.link_mode = mode
        if participant.recv is not None and participant.recv.budget is not None:
            participant.recv.budget.set_mode(mode)  # type: ignore[arg-type]

    def set_view(self, participant: Participant, slots: dict[str, SlotView]) -> None:
        recv = participant.recv
        if recv is None:
            raise WrongState("subscribe first")
        if recv.budget is None:
            return  # no budgets on this server (media.budget_enabled false): every slot is sent anyway
        try:
            recv.budget.set_views(slots)
        except ValueError as exc:
            raise InvalidMessage(str(exc)) from None

    def forget(self, participant: Participant) -> None:
        if self.sites.pop(participant.id, None) is not None:
            self._changed()

    def _changed(self) -> None:
        self._dirty = True
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, self._last_broadcast + LINKS_INTERVAL_S - loop.time())
        self._timer = loop.call_later(wait, self._broadcast)

    def _broadcast(self) -> None:
        self._timer = None
        if not self._dirty:
            return
        self._dirty = False
        self._last_broadcast = asyncio.get_running_loop().time()
        room = self.room
        room._spawn(room.outbox.broadcast(room, "links", {"sites": dict(self.sites)}))

    def payload(self) -> dict[str, Any]:
        """For the join payload: every site's link as last reported."""
        return dict(self.sites)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
