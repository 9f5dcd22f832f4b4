"""UDP probes for measuring a lab link from both ends: echo, round trips, paced senders and counting
receivers. Each prints one JSON object. Run one end inside a site (``site.exec_args``) and the other
in the root namespace; both ends read the same CLOCK_MONOTONIC, so one-way delay is measurable.

Packet payload: sequence number (u32), send time (f64, monotonic seconds), padding.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from typing import Any

HEADER = struct.Struct("!Id")
#: IPv4 + UDP header bytes on top of the payload.
OVERHEAD = 28


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def echo(bind: str, port: int, seconds: float) -> dict[str, Any]:
    """Send every datagram back to where it came from, for ``seconds``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((bind, port))
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    echoed = 0
    print(json.dumps({"listening": True}), flush=True)
    while time.monotonic() < deadline:
        try:
            data, peer = sock.recvfrom(65535)
        except socket.timeout:
            continue
        sock.sendto(data, peer)
        echoed += 1
    return {"echoed": echoed}


def rtt(to: tuple[str, int], count: int, interval: float, timeout: float, size: int = 64) -> dict[str, Any]:
    """``count`` round trips through an echo, one every ``interval`` seconds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(to)
    samples: list[float] = []
    lost = 0
    for seq in range(count):
        sent = time.monotonic()
        sock.send(HEADER.pack(seq, sent).ljust(size, b"\0"))
        deadline = sent + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                lost += 1
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                continue
            got_seq, stamp = HEADER.unpack_from(data)
            if got_seq == seq:
                samples.append((time.monotonic() - stamp) * 1000)
                break
        pause = sent + interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return {"sent": count, "received": len(samples), "lost": lost,
            "rtt_ms_mean": sum(samples) / len(samples) if samples else None,
            "rtt_ms_min": min(samples, default=None), "rtt_ms_max": max(samples, default=None),
            "rtt_ms_p50": _percentile(samples, 50), "samples_ms": [round(s, 3) for s in samples]}


def send(to: tuple[str, int], *, count: int | None, pps: float, size: int, seconds: float | None,
         bind: str | None = None) -> dict[str, Any]:
    """Paced sender: ``pps`` packets per second of ``size`` payload bytes, ``count`` of them or for ``seconds``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    if bind:
        sock.bind((bind, 0))
    padding = b"\0" * max(0, size - HEADER.size)
    start = time.monotonic()
    sent = errors = 0
    while True:
        now = time.monotonic()
        if seconds is not None and now - start >= seconds:
            break
        if count is not None and sent >= count:
            break
        due = int((now - start) * pps) + 1
        if count is not None:
            due = min(due, count)
        while sent < due:
            try:
                sock.sendto(HEADER.pack(sent, time.monotonic()) + padding, to)
            except OSError:
                errors += 1
            sent += 1
        time.sleep(0.0005)
    return {"sent": sent, "errors": errors, "seconds": time.monotonic() - start, "size": size}


def receive(bind: str, port: int, *, seconds: float, idle: float, count: int | None) -> dict[str, Any]:
    """Count what arrives: unique packets, loss and loss bursts by sequence, one-way delay, throughput."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((bind, port))
    print(json.dumps({"listening": True}), flush=True)
    deadline = time.monotonic() + seconds
    seen: set[int] = set()
    delays: list[float] = []
    arrivals: list[tuple[float, int]] = []
    last = None
    while True:
        now = time.monotonic()
        if now >= deadline or (last is not None and now - last >= idle) or (count is not None and len(seen) >= count):
            break
        sock.settimeout(min(0.2, deadline - now))
        try:
            data = sock.recv(65535)
        except socket.timeout:
            continue
        last = time.monotonic()
        seq, stamp = HEADER.unpack_from(data)
        if seq in seen:
            continue
        seen.add(seq)
        delays.append((last - stamp) * 1000)
        arrivals.append((last, len(data) + OVERHEAD))
    expected = (count if count is not None else (max(seen) + 1 if seen else 0))
    bursts = _loss_bursts(seen, expected)
    result: dict[str, Any] = {
        "received": len(seen), "expected": expected,
        "loss_percent": 100.0 * (expected - len(seen)) / expected if expected else None,
        "loss_bursts": len(bursts), "mean_burst": sum(bursts) / len(bursts) if bursts else None,
        "delay_ms_p50": _percentile(delays, 50), "delay_ms_p95": _percentile(delays, 95),
        "delay_ms_max": max(delays, default=None), "delay_ms_min": min(delays, default=None),
        "delay_ms_p50_last_quarter": _percentile(delays[len(delays) * 3 // 4:], 50),
        "max_gap_ms": max(((b[0] - a[0]) * 1000 for a, b in zip(arrivals, arrivals[1:])), default=None),
        "max_seq": max(seen, default=None),
    }
    if len(arrivals) > 2:
        # Throughput over the middle of the run (first and last 10 % of arrivals left out).
        a, b = len(arrivals) // 10, len(arrivals) - 1 - len(arrivals) // 10
        span = arrivals[b][0] - arrivals[a][0]
        sent_bytes = sum(size for _, size in arrivals[a + 1:b + 1])
        result["throughput_kbit"] = sent_bytes * 8 / span / 1000 if span > 0 else None
    return result


def _loss_bursts(seen: set[int], expected: int) -> list[int]:
    bursts, run = [], 0
    for seq in range(expected):
        if seq in seen:
            if run:
                bursts.append(run)
            run = 0
        else:
            run += 1
    if run:
        bursts.append(run)
    return bursts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("echo", help="UDP echo server")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=30)
    p = sub.add_parser("rtt", help="round trips through an echo server")
    p.add_argument("--to", required=True, help="ADDR:PORT")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=2.0)
    p = sub.add_parser("send", help="paced UDP sender")
    p.add_argument("--to", required=True, help="ADDR:PORT")
    p.add_argument("--bind")
    p.add_argument("--count", type=int)
    p.add_argument("--pps", type=float, default=100)
    p.add_argument("--size", type=int, default=64, help="UDP payload bytes (>= 12)")
    p.add_argument("--seconds", type=float)
    p = sub.add_parser("recv", help="counting UDP receiver")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--idle", type=float, default=2.0, help="stop this long after the last packet")
    p.add_argument("--count", type=int, help="packets the sender sends (stop when all came)")


def main(args: argparse.Namespace) -> int:
    if args.probe == "echo":
        result = echo(args.bind, args.port, args.seconds)
    elif args.probe == "rtt":
        result = rtt(_addr(args.to), args.count, args.interval, args.timeout)
    elif args.probe == "send":
        if args.count is None and args.seconds is None:
            print("error: give --count or --seconds", file=sys.stderr)
            return 2
        result = send(_addr(args.to), count=args.count, pps=args.pps, size=max(args.size, HEADER.size),
                      seconds=args.seconds, bind=args.bind)
    else:
        result = receive(args.bind, args.port, seconds=args.seconds, idle=args.idle, count=args.count)
    print(json.dumps(result), flush=True)
    return 0
