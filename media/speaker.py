"""Dominant speaker detection from RFC 6464 audio levels, with hysteresis. Pure: time is passed in.

Levels arrive per audio packet as -dBov (0 loudest, 127 silence), each with the media time the
packet carries (its duration). They are accounted in buckets of ``bucket_ms`` by the amount of
media they stand for, not by when the event loop got round to them: a packet is *speech* when its
level is above the speech threshold. A speaker takes the stage from the current dominant speaker
only when, over the last ``switch_ms``, it spoke for at least ``min_active_ratio`` of that time and
was louder on average than the current speaker by ``margin`` — so a cough or a door slam (a few
hundred milliseconds) never steals the stage, while a real turn of speech does within ~``switch_ms``.

Why media time: on a busy server the 100 ms tick runs late (two or more buckets close at once)
and packets arrive in bursts (a sender or the network stalls, then catches up). Counting buckets
that happened to receive packets made both look like silence, so a sustained speaker could stay
below the ratio for as long as the load lasted. Summing the media time of the packets instead keeps
the totals over the window the same however they were spread over the buckets.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


#: Media time assumed for a packet whose duration is not known (the usual Opus packet).
DEFAULT_PACKET_MS = 20.0


@dataclass
class _Speaker:
    #: Per closed bucket: (loudness x media ms, speech media ms).
    buckets: deque[tuple[float, float]]
    loud_ms: float = 0.0
    speech_ms: float = 0.0
    last_ms: int = 0
    order: int = field(default=0)


class DominantSpeakerDetector:
    def __init__(
        self,
        *,
        switch_ms: int = 1000,
        bucket_ms: int = 100,
        speech_level: int = 50,
        min_active_ratio: float = 0.6,
        margin: float = 3.0,
    ) -> None:
        if bucket_ms <= 0 or switch_ms < bucket_ms:
            raise ValueError("need 0 < bucket_ms <= switch_ms")
        self.bucket_ms = bucket_ms
        self.window = max(1, switch_ms // bucket_ms)
        self.window_ms = self.window * bucket_ms
        self.speech_level = speech_level
        self.min_active_ratio = min_active_ratio
        self.margin = margin
        self.dominant: str | None = None
        self._speakers: dict[str, _Speaker] = {}
        self._next_bucket_ms: int | None = None
        self._counter = 0

    @property
    def speakers(self) -> list[str]:
        return list(self._speakers)

    def add_speaker(self, speaker: str) -> None:
        if speaker not in self._speakers:
            self._counter += 1
            self._speakers[speaker] = _Speaker(deque(maxlen=self.window), order=self._counter)

    def remove_speaker(self, speaker: str) -> str | None:
        """Forget a speaker; returns the new dominant speaker if it was the dominant one."""
        self._speakers.pop(speaker, None)
        if self.dominant == speaker:
            self.dominant = None
            return None
        return self.dominant

    def add_level(self, speaker: str, level: int, now_ms: int, duration_ms: float = DEFAULT_PACKET_MS) -> None:
        """Account one audio level (0..127 -dBov) of ``speaker``, for ``duration_ms`` of media."""
        state = self._speakers.get(speaker)
        if state is None:
            self.add_speaker(speaker)
            state = self._speakers[speaker]
        level &= 0x7F
        state.loud_ms += (127 - level) * duration_ms
        if level <= self.speech_level:
            state.speech_ms += duration_ms
        state.last_ms = now_ms

    def _close_bucket(self) -> None:
        for state in self._speakers.values():
            state.buckets.append((state.loud_ms, state.speech_ms))
            state.loud_ms = state.speech_ms = 0.0

    def _stats(self, state: _Speaker) -> tuple[float, float]:
        """(share of the window spoken, mean loudness over the window), from media time."""
        buckets = state.buckets
        if not buckets:
            return 0.0, 0.0
        loud = sum(b[0] for b in buckets)
        speech = sum(b[1] for b in buckets)
        # A burst that catches up on a stall may bring slightly more than a window of media.
        return min(1.0, speech / self.window_ms), min(127.0, loud / self.window_ms)

    def tick(self, now_ms: int) -> str | None:
        """Close elapsed buckets and re-evaluate; returns the new dominant speaker on a change."""
        if self._next_bucket_ms is None:
            self._next_bucket_ms = now_ms + self.bucket_ms
            return None
        closed = 0
        while now_ms >= self._next_bucket_ms:
            self._close_bucket()
            self._next_bucket_ms += self.bucket_ms
            closed += 1
            if closed > self.window:  # long pause: skip ahead
                self._next_bucket_ms = now_ms + self.bucket_ms
                break
        if not closed:
            return None
        current = self._speakers.get(self.dominant) if self.dominant else None
        cur_ratio, cur_mean = self._stats(current) if current else (0.0, 0.0)
        best: str | None = None
        best_mean = -1.0
        for name, state in self._speakers.items():
            if name == self.dominant:
                continue
            ratio, mean = self._stats(state)
            if ratio < self.min_active_ratio:
                continue
            if current is not None and mean <= cur_mean + self.margin:
                continue
            if mean > best_mean:
                best, best_mean = name, mean
        if best is not None:
            self.dominant = best
            return best
        return None
