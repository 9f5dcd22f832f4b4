"""Publishers: pre-encoded VP8/Opus streams sent through neutralized aiortc senders (one header, one
SRTP protect, one sendto per packet), and the pacer that schedules them."""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import dataclass
from typing import Any

from bench.loadgen.rtp import (HEADER, TRAILER_MAGIC, U64, URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID,
                               abs_send_time, ext_block, video_ts_jitter)
from bench.media_loop import MediaLoop, vp8_payloads
from media import aiortc_seams as seams

SPEECH_LEVEL = 25  # -dBov of an active speaker
SILENCE_LEVEL = 127
DTX_INTERVAL_S = 0.4
PLI_MIN_INTERVAL_S = 1.0


@dataclass
class OutStream:
    site: str
    kind: str
    egress: seams.SrtpEgress
    ssrc: int
    payload_type: int
    ext_ids: dict[str, int]
    mid: str
    trailer: bool
    seq: int = 0
    ts: int = 0
    k: int = 0  # frames / packets sent
    loop_index: int = 0
    picture_id: int = 0
    keyframe_wanted: bool = False
    last_keyframe_s: float = 0.0
    speaking: bool = False
    sent: int = 0
    send_failures: int = 0
    window_frames: list[tuple[int, int]] | None = None  # (RTP timestamp, send ns) while measuring

    def _send(self, payload: bytes, marker: int, extensions: list[tuple[int, bytes]]) -> None:
        ext = ext_block(extensions)
        first = 0x90 if ext else 0x80
        now = time.monotonic_ns()
        if self.trailer:
            payload = payload + TRAILER_MAGIC + U64.pack(now)
        data = HEADER.pack(first, (marker << 7) | self.payload_type, self.seq, self.ts, self.ssrc) + ext + payload
        self.seq = (self.seq + 1) & 0xFFFF
        if self.egress.send_rtp(data):
            self.sent += 1
        else:
            self.send_failures += 1

    def send_video(self, media: MediaLoop) -> float:
        """Send the next frame; returns the interval to the next one."""
        now_s = time.monotonic()
        if self.keyframe_wanted and now_s - self.last_keyframe_s >= PLI_MIN_INTERVAL_S:
            self.loop_index = 0
        self.keyframe_wanted = False
        if self.loop_index == 0:
            self.last_keyframe_s = now_s
        frame = media.frames[self.loop_index]
        self.loop_index = (self.loop_index + 1) % len(media.frames)
        self.k += 1
        self.ts = (self.ts + 6000 + 300 * (video_ts_jitter(self.k) - video_ts_jitter(self.k - 1))) & 0xFFFFFFFF
        if self.window_frames is not None:
            self.window_frames.append((self.ts, time.monotonic_ns()))
        payloads = vp8_payloads(frame, self.picture_id)
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        mid = (self.ext_ids.get("mid", 0), self.mid.encode())
        abs_id = self.ext_ids.get("abs", 0)
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            self._send(payload, int(i == last), [mid, (abs_id, abs_send_time(time.monotonic_ns()))])
        return 1 / media.params.fps

    def send_audio(self, media: MediaLoop) -> float:
        mid = (self.ext_ids.get("mid", 0), self.mid.encode())
        level_id = self.ext_ids.get("level", 0)
        if self.speaking:
            self.ts = (self.ts + 960) & 0xFFFFFFFF
            payload = media.speech[self.k % len(media.speech)]
            self.k += 1
            self._send(payload, 0, [mid, (level_id, bytes([0x80 | SPEECH_LEVEL]))])
            return 0.02
        self.ts = (self.ts + int(48000 * DTX_INTERVAL_S)) & 0xFFFFFFFF
        self._send(media.silence, 0, [mid, (level_id, bytes([SILENCE_LEVEL]))])
        return DTX_INTERVAL_S


def ext_ids_of(transceiver: Any) -> dict[str, int]:
    _, extensions = seams.negotiated_parameters(transceiver)
    names = {URI_MID: "mid", URI_AUDIO_LEVEL: "level", URI_ABS_SEND_TIME: "abs"}
    return {names[e.uri]: e.id for e in extensions if e.uri in names}



class Pacer:
    def __init__(self, media: MediaLoop) -> None:
        self.media = media
        self.heap: list[tuple[float, int, OutStream]] = []
        self.count = 0
        self.late_max = 0.0

    def add(self, stream: OutStream, start: float) -> None:
        heapq.heappush(self.heap, (start, self.count, stream))
        self.count += 1

    async def run(self) -> None:
        heap = self.heap
        while True:
            if not heap:
                await asyncio.sleep(0.05)
                continue
            due, _, stream = heap[0]
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            heapq.heappop(heap)
            if now - due > 0.2:  # fell far behind: do not burst to catch up
                due = now
            interval = stream.send_video(self.media) if stream.kind == "video" else stream.send_audio(self.media)
            heapq.heappush(heap, (due + interval, self.count, stream))
            self.count += 1
