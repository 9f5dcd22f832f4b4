"""Last-N video selection: which video producers one subscriber receives. Pure."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def select_last_n(
    *,
    subscriber: str,
    videos: Sequence[tuple[str, str]],
    speaker_order: Sequence[str],
    pinned: Collection[str],
    n: int,
) -> frozenset[str]:
    """Producer ids of the videos ``subscriber`` should receive.

    ``videos``: (producer id, participant id) of every video producer, in publishing order.
    ``speaker_order``: participant ids, most recent dominant speaker first.
    ``pinned``: participants always included (the chair, the one holding the floor), even when
    they alone exceed ``n``. Then the most recent speakers, then the remaining videos in
    publishing order, until ``n`` videos. A subscriber never receives its own videos.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    by_participant: dict[str, list[str]] = {}
    for producer_id, participant in videos:
        if participant != subscriber:
            by_participant.setdefault(participant, []).append(producer_id)
    selected: list[str] = []
    for participant in by_participant:
        if participant in pinned:
            selected.extend(by_participant[participant])
    ranked: list[str] = []
    seen = set(pinned)
    for participant in speaker_order:
        if participant not in seen and participant in by_participant:
            ranked.append(participant)
            seen.add(participant)
    ranked.extend(p for p in by_participant if p not in seen)
    for participant in ranked:
        for producer_id in by_participant[participant]:
            if len(selected) >= n:
                return frozenset(selected)
            selected.append(producer_id)
    return frozenset(selected)
