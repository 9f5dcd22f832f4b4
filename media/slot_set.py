"""SlotSet: the fixed slots of one subscriber's receiving connection.

The stage (one audio and one video slot in one media stream, so the browser keeps them in lip
sync), ``videos`` thumbnail video slots and ``audios`` extra audio slots: whatever the session
size, the subscriber receives at most 1 + videos video and 1 + audios audio streams.

The set is created when the receiving connection is first negotiated (one m-line per slot, in
:meth:`SlotSet.slot_ids` order) and never renegotiated; :meth:`SlotSet.update` moves producers
between slots (:mod:`media.slot_assignment`) and only the slots whose producer changed switch.

Events: ``switch`` (SlotSwitch), re-emitted from every slot with one sequence shared by the set;
``close`` ().
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .events import EventEmitter
from .slot import DEFAULT_KEYFRAME_RETRY_MS, Slot, SlotKind
from .slot_assignment import STAGE_AUDIO, STAGE_VIDEO, SlotPlan, Wanted, assign_slots, audio_slot_id, video_slot_id
from .slot_report import SlotSwitch

if TYPE_CHECKING:
    from .producer import Producer

DEFAULT_VIDEO_SLOTS = 8
DEFAULT_AUDIO_SLOTS = 2


def _random_ssrcs(_slot_id: str, _kind: SlotKind) -> tuple[int, int]:
    return random.getrandbits(32) or 1, random.getrandbits(32) or 1


class SlotSet(EventEmitter):
    """The slots of one subscriber; see the module docstring."""

    def __init__(
        self,
        *,
        subscriber_id: str,
        cname: str,
        send_rtp: Callable[[bytes], bool],
        send_rtcp: Callable[[bytes], bool],
        videos: int = DEFAULT_VIDEO_SLOTS,
        audios: int = DEFAULT_AUDIO_SLOTS,
        ssrcs: Callable[[str, SlotKind], tuple[int, int]] = _random_ssrcs,
        keyframe_retry_ms: int = DEFAULT_KEYFRAME_RETRY_MS,
    ) -> None:
        super().__init__()
        if not 0 <= videos <= 32 or not 0 <= audios <= 16:
            raise ValueError("a slot set holds 0..32 thumbnail and 0..16 extra audio slots")
        self.subscriber_id = subscriber_id
        self.closed = False
        self.plan = SlotPlan.empty(videos, audios)
        self._sequence = itertools.count(1).__next__
        self.slots: dict[str, Slot] = {}
        #: The latest switch of each slot: what it carries now, for a listener that comes late.
        self.last_switches: dict[str, SlotSwitch] = {}
        layout: list[tuple[str, SlotKind, str]] = [
            (STAGE_AUDIO, "audio", "stage"),
            (STAGE_VIDEO, "video", "stage"),
        ]
        layout += [(video_slot_id(i), "video", video_slot_id(i)) for i in range(videos)]
        layout += [(audio_slot_id(i), "audio", audio_slot_id(i)) for i in range(audios)]
        for slot_id, kind, stream in layout:
            ssrc, rtx_ssrc = ssrcs(slot_id, kind)
            slot = Slot(
                slot_id=slot_id,
                kind=kind,
                ssrc=ssrc,
                rtx_ssrc=rtx_ssrc,
                cname=cname,
                stream_id=stream,
                send_rtp=send_rtp,
                send_rtcp=send_rtcp,
                keyframe_retry_ms=keyframe_retry_ms,
                next_sequence=self._sequence,
            )
            slot.on("switch", self._on_switch)
            self.slots[slot_id] = slot
        #: Slot by SSRC and RTX SSRC, for RTCP feedback (the transport routes the subscriber's RTCP with it).
        self.by_ssrc: dict[int, Slot] = {}
        for slot in self.slots.values():
            self.by_ssrc[slot.ssrc] = slot
            self.by_ssrc[slot.rtx_ssrc] = slot

    def slot_ids(self) -> list[str]:
        """Slot ids in m-line order: stage audio, stage video, thumbnails, extra audio."""
        return list(self.slots)

    def _on_switch(self, event: SlotSwitch) -> None:
        self.last_switches[event.slot_id] = event
        self.emit("switch", event)

    def update(self, wanted: Wanted, producers: Mapping[str, Producer]) -> list[str]:
        """Place ``wanted`` with minimal moves and switch the slots that changed; returns their ids.

        ``producers``: producer id -> Producer (a wanted id that is missing or closed is skipped).
        """
        live = {pid for pid, p in producers.items() if not p.closed}
        wanted = Wanted(
            stage_audio=wanted.stage_audio if wanted.stage_audio in live else None,
            stage_video=wanted.stage_video if wanted.stage_video in live else None,
            videos=tuple(v for v in wanted.videos if v in live),
            audios=tuple(a for a in wanted.audios if a in live),
        )
        previous = SlotPlan(
            stage_audio=self.plan.stage_audio,
            stage_video=self.plan.stage_video,
            videos=tuple(p if p in live else None for p in self.plan.videos),
            audios=tuple(p if p in live else None for p in self.plan.audios),
        )
        return self.apply(assign_slots(previous, wanted), producers)

    def apply(self, plan: SlotPlan, producers: Mapping[str, Producer]) -> list[str]:
        """Switch every slot whose target differs from ``plan``; returns the ids switched."""
        if self.closed:
            return []
        switched: list[str] = []
        for slot_id, producer_id in plan.items():
            slot = self.slots[slot_id]
            producer = producers.get(producer_id) if producer_id is not None else None
            if producer is not None and producer.closed:
                producer = None
            if slot.target is producer:
                continue
            slot.switch_to(producer)
            switched.append(slot_id)
        self.plan = plan
        return switched

    def set_link_up(self, up: bool) -> None:
        """Whether the subscriber's connection can carry packets now (see :attr:`Slot.link_up`)."""
        for slot in self.slots.values():
            slot.set_link_up(up)

    def video_streams(self) -> int:
        return sum(1 for s in self.slots.values() if s.kind == "video")

    def audio_streams(self) -> int:
        return sum(1 for s in self.slots.values() if s.kind == "audio")

    def send_sender_reports(self) -> None:
        """Periodic SRs of the slots that carry media (call from the transport's RTCP loop)."""
        for slot in self.slots.values():
            if slot.forwarding:
                slot.send_sender_report()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for slot in self.slots.values():
            slot.close()
        self.emit("close")
        self.remove_all_listeners()
