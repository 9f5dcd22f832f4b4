"""Which producer goes to which slot of one subscriber, with minimal moves. Pure.

Two steps:

1. :func:`wanted_streams` orders what a subscriber should see and hear: the stage participant
   (the chair's spotlight, else the subscriber's own pin, else the floor holder, else the dominant
   speaker, else the most recent speaker, else the first publisher), then videos (pinned, then
   speaker order, then publishing order), then voices (floor holder, pinned, speaker order, then
   publishing order: before a session opens every voice is forwarded, and a small session hears
   everyone before they first spoke).
   A subscriber never receives its own streams.
2. :func:`assign_slots` places them: the stage gets the stage participant's audio and video; the
   first V wanted videos (the stage video excluded) fill the thumbnails and the first A wanted
   voices (the stage audio excluded) the extra audio slots. A producer already in a slot of the
   same group stays in that slot; newcomers take the freed slots in slot order; slots left over
   are empty. Only slots whose producer changed need a switch (:meth:`SlotPlan.changes`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

STAGE_AUDIO = "stage-audio"
STAGE_VIDEO = "stage-video"


def video_slot_id(index: int) -> str:
    return f"video-{index}"


def audio_slot_id(index: int) -> str:
    return f"audio-{index}"


@dataclass(frozen=True)
class Publisher:
    """A participant's published streams (producer ids; None: not published)."""

    participant_id: str
    audio: str | None = None
    video: str | None = None


@dataclass(frozen=True)
class Wanted:
    """What one subscriber should see and hear, best first."""

    stage_audio: str | None
    stage_video: str | None
    videos: tuple[str, ...]
    audios: tuple[str, ...]


@dataclass(frozen=True)
class SlotPlan:
    """Producer id per slot (None: empty)."""

    stage_audio: str | None
    stage_video: str | None
    videos: tuple[str | None, ...]
    audios: tuple[str | None, ...]

    @classmethod
    def empty(cls, videos: int, audios: int) -> SlotPlan:
        return cls(None, None, (None,) * videos, (None,) * audios)

    def items(self) -> list[tuple[str, str | None]]:
        """(slot id, producer id) for every slot, stage first."""
        out = [(STAGE_AUDIO, self.stage_audio), (STAGE_VIDEO, self.stage_video)]
        out += [(video_slot_id(i), p) for i, p in enumerate(self.videos)]
        out += [(audio_slot_id(i), p) for i, p in enumerate(self.audios)]
        return out

    def changes(self, previous: SlotPlan) -> list[tuple[str, str | None]]:
        """(slot id, new producer id) of the slots that differ from ``previous``."""
        before = dict(previous.items())
        return [(slot_id, p) for slot_id, p in self.items() if before.get(slot_id, None) != p]

    def producers(self) -> set[str]:
        return {p for _, p in self.items() if p is not None}


def wanted_streams(
    *,
    subscriber: str,
    publishers: Sequence[Publisher],
    speaker_order: Sequence[str] = (),
    dominant_speaker: str | None = None,
    floor_holder: str | None = None,
    spotlight: str | None = None,
    own_pin: str | None = None,
    pinned: Collection[str] = (),
) -> Wanted:
    """Order the streams ``subscriber`` should receive (see the module docstring).

    ``publishers`` in publishing order; ``speaker_order`` participant ids, most recent speaker
    first; ``spotlight``: the chair put this participant on everyone's stage; ``own_pin``: the
    subscriber pinned this participant to its own stage; ``pinned``: always forwarded (the chair,
    the floor holder).
    """
    by_id = {p.participant_id: p for p in publishers if p.participant_id != subscriber}
    stage: str | None = None
    candidates = [spotlight, own_pin, floor_holder, dominant_speaker, *speaker_order]
    candidates += [p.participant_id for p in publishers]
    for candidate in candidates:
        if candidate is not None and candidate in by_id:
            stage = candidate
            break
    stage_pub = by_id.get(stage) if stage is not None else None
    order: list[str] = []
    for participant in (*(p for p in by_id if p in pinned), *speaker_order, *by_id):
        if participant in by_id and participant not in order:
            order.append(participant)
    videos = tuple(v for p in order if (v := by_id[p].video) is not None and p != stage)
    voices: list[str] = []
    for participant in (floor_holder, *(p for p in by_id if p in pinned), *speaker_order, *by_id):
        if participant is not None and participant in by_id and participant != stage and participant not in voices:
            voices.append(participant)
    audios = tuple(a for p in voices if (a := by_id[p].audio) is not None)
    return Wanted(
        stage_audio=stage_pub.audio if stage_pub is not None else None,
        stage_video=stage_pub.video if stage_pub is not None else None,
        videos=videos,
        audios=audios,
    )


def _fill(current: Sequence[str | None], wanted: Sequence[str], exclude: str | None) -> tuple[str | None, ...]:
    chosen: list[str] = []
    for producer_id in wanted:
        if producer_id != exclude and producer_id not in chosen:
            chosen.append(producer_id)
            if len(chosen) == len(current):
                break
    keep = set(chosen)
    slots: list[str | None] = [p if p in keep else None for p in current]
    placed = {p for p in slots if p is not None}
    newcomers = iter(p for p in chosen if p not in placed)
    for i, p in enumerate(slots):
        if p is None:
            slots[i] = next(newcomers, None)
    return tuple(slots)


def assign_slots(previous: SlotPlan, wanted: Wanted) -> SlotPlan:
    """Place ``wanted`` into slots, keeping every producer that stays where it was."""
    return SlotPlan(
        stage_audio=wanted.stage_audio,
        stage_video=wanted.stage_video,
        videos=_fill(previous.videos, wanted.videos, wanted.stage_video),
        audios=_fill(previous.audios, wanted.audios, wanted.stage_audio),
    )
