"""Evidence of life and the liveness sweep (signaling/liveness.py), without a server: the real-process
tests are tests/bots/test_attendance_liveness.py."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace
from typing import Any

from signaling.config import SignalingConfig
from signaling.liveness import Evidence, LivenessSweep, end_of_drop, last_alive, seen_at, watch_engineio


def participant(silent: float, media_silent: float | None = None) -> Any:
    evidence = Evidence(fresh_seconds=5.0)
    evidence.signal_at = time.monotonic() - silent
    send = None
    if media_silent is not None:
        send = SimpleNamespace(stats=SimpleNamespace(last_packet_ms=int((time.monotonic() - media_silent) * 1000)))
    return SimpleNamespace(id=f"p-{silent}", evidence=evidence, send=send, recv=None, gone_at=None, via=None)


def test_media_counts_as_evidence_and_the_latest_sign_wins() -> None:
    p = participant(silent=20.0, media_silent=0.5)
    assert time.monotonic() - last_alive(p) < 1.0
    old_media = participant(silent=20.0, media_silent=30.0)
    assert 19.9 <= time.monotonic() - last_alive(old_media) < 21.0
    no_packet_yet = participant(silent=2.0)
    no_packet_yet.recv = SimpleNamespace(stats=SimpleNamespace(last_packet_ms=0))
    assert 1.5 < time.monotonic() - last_alive(no_packet_yet) < 3.0


def test_the_heartbeat_writes_now_while_fresh_else_the_last_evidence() -> None:
    now = dt.datetime.now(dt.UTC)
    assert seen_at(participant(silent=1.0), now) == now
    stale = seen_at(participant(silent=12.0), now)
    assert abs((now - stale).total_seconds() - 12.0) < 0.5
    assert end_of_drop(participant(silent=1.0)) is None  # a drop right after a sign of life ends now
    ended = end_of_drop(participant(silent=30.0))
    assert ended is not None and abs((dt.datetime.now(dt.UTC) - ended).total_seconds() - 30.0) < 0.5


async def test_the_sweep_drops_the_silent_at_their_last_evidence_and_keeps_the_others() -> None:
    silent, quiet_but_streaming, fresh = participant(silent=9.0), participant(silent=9.0, media_silent=0.1), \
        participant(silent=1.0)
    room = SimpleNamespace(meeting_id=1, participants={p.id + str(i): p for i, p in
                                                       enumerate((silent, quiet_but_streaming, fresh))})
    dropped: list[Any] = []

    async def on_dead(r: Any, p: Any) -> None:
        dropped.append(p)

    sweep = LivenessSweep(8.0, lambda: [room], on_dead)  # type: ignore[list-item]
    assert await sweep.sweep() == 1
    assert dropped == [silent]
    assert silent.gone_at is not None and abs((dt.datetime.now(dt.UTC) - silent.gone_at).total_seconds() - 9.0) < 0.5
    assert await sweep.sweep() == 0  # already on its way out


async def test_every_engineio_packet_is_evidence() -> None:
    received: list[str] = []

    class Socket:
        async def receive(self, pkt: str) -> None:
            received.append(pkt)

    sock, evidence = Socket(), Evidence()
    evidence.signal_at -= 10
    assert watch_engineio(sock, evidence)
    assert not watch_engineio(sock, evidence)  # once
    assert not watch_engineio(None, evidence)
    await sock.receive("pong")
    assert received == ["pong"] and time.monotonic() - evidence.signal_at < 1.0


def test_config_keeps_detection_after_a_missed_pong() -> None:
    assert SignalingConfig().validate() == []
    assert SignalingConfig().dead_after_seconds + 0.5 <= 10.0  # noticed within 10 s (issue 10.3)
    problems = dict(SignalingConfig(ping_interval_seconds=5.0, dead_after_seconds=6.0).validate())
    assert "dead_after_seconds" in problems
