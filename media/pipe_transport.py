"""A pipe's datagram flow: SRTP/SRTCP (AEAD AES-128-GCM) over one UDP socket, dialled by the node.

Keys come from the control channel, new at every connection (:func:`new_keys`): one key per direction,
so neither side can forge the other's packets. The node knows the centre's address and sends first;
the centre learns the node's address from the first packet that authenticates, and follows it when it
changes (a NAT rebinding after a WAN cut), never from a packet that does not. The node sends a
keep-alive (an empty SRTCP receiver report) every :data:`KEEPALIVE_SECONDS` so its NAT binding stays
open while nothing else flows.

Where UDP does not get through (a firewall that lets only TCP out), the same protected packets ride
the control channel instead (:meth:`PipeTransport.use_stream`, media/pipe_stream.py): the centre
answers each keep-alive, so a node that hears nothing back over UDP within a few seconds switches. Until
it has heard anything, the node sends a keep-alive every :data:`PROBE_SECONDS`: on a lossy link one
lost keep-alive or answer must not send the pipe over TCP for the whole connection.

A datagram that does not authenticate, or that is neither RTP nor RTCP, is dropped and counted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pylibsrtp

from .errors import MediaError
from .pipe import is_rtcp
from .rtcp import build_rr

#: The SRTP profile of every pipe: AEAD AES-128-GCM (RFC 7714): 16-byte key, 12-byte salt.
PROFILE = pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM
KEY_LENGTH = 16 + 12
KEEPALIVE_SECONDS = 5.0
#: How often the node sends a keep-alive while it has heard nothing over UDP yet (the probe).
PROBE_SECONDS = 0.25
#: The centre answers keep-alives at most this often (they authenticate: an answer amplifies nothing).
ANSWER_SPACING_SECONDS = 0.2
_KEEPALIVE_SSRC = 0x4B41_4C56


class PipeTransportError(MediaError):
    """Keys or addresses a pipe cannot use."""


@dataclass(frozen=True)
class PipeKeys:
    """The two keys of one pipe connection (key + salt, base64 on the control channel)."""

    centre_to_node: bytes
    node_to_centre: bytes

    def to_dict(self) -> dict[str, str]:
        return {"centre_to_node": base64.b64encode(self.centre_to_node).decode(),
                "node_to_centre": base64.b64encode(self.node_to_centre).decode()}

    @classmethod
    def from_dict(cls, data: object) -> PipeKeys:
        if not isinstance(data, dict):
            raise PipeTransportError("pipe keys are an object")
        try:
            keys = [base64.b64decode(data[name], validate=True) for name in ("centre_to_node", "node_to_centre")]
        except (KeyError, TypeError, ValueError) as exc:
            raise PipeTransportError("pipe keys must be two base64 strings") from exc
        if any(len(k) != KEY_LENGTH for k in keys):
            raise PipeTransportError(f"a pipe key is {KEY_LENGTH} bytes")
        if keys[0] == keys[1]:
            raise PipeTransportError("the two directions of a pipe need different keys")
        return cls(keys[0], keys[1])


def new_keys() -> PipeKeys:
    return PipeKeys(os.urandom(KEY_LENGTH), os.urandom(KEY_LENGTH))


def _session(key: bytes, direction: int) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(key=key, ssrc_type=direction, srtp_profile=PROFILE)
    policy.allow_repeat_tx = True  # a retransmission is the same packet again
    policy.window_size = 1024
    return pylibsrtp.Session(policy=policy)


@dataclass
class PipeTransportStats:
    sent: int = 0
    received: int = 0
    rejected: int = 0
    send_errors: int = 0
    address_changes: int = 0


class PipeTransport(asyncio.DatagramProtocol):
    """One end of a pipe's flow. ``role`` is ``"node"`` (dials ``remote``) or ``"centre"`` (learns it)."""

    def __init__(self, role: str, keys: PipeKeys, on_datagram: Callable[[bytes], None], *,
                 remote: tuple[str, int] | None = None) -> None:
        if role not in ("node", "centre"):
            raise PipeTransportError("a pipe end is the node's or the centre's")
        if role == "node" and remote is None:
            raise PipeTransportError("the node dials the centre: give its address")
        outbound, inbound = ((keys.node_to_centre, keys.centre_to_node) if role == "node"
                             else (keys.centre_to_node, keys.node_to_centre))
        self.role = role
        self.remote = remote
        self._tx = _session(outbound, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _session(inbound, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self._on_datagram = on_datagram
        self._transport: asyncio.DatagramTransport | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.stats = PipeTransportStats()
        #: When the last authenticated datagram arrived (``time.monotonic()``; 0: none yet).
        self.last_received = 0.0
        #: Where packets go when UDP does not get through (media/pipe_stream.py); None: UDP.
        self._stream: Callable[[bytes], None] | None = None
        self._last_keepalive_answer = 0.0

    @property
    def carrier(self) -> str:
        """``udp``, or ``stream`` (the packets ride the control channel: TCP, TLS in production)."""
        return "udp" if self._stream is None else "stream"

    def use_stream(self, send: Callable[[bytes], None]) -> None:
        """From now on send every packet through ``send`` (one protected packet per message) instead of UDP."""
        self._stream = send

    def stream_received(self, data: bytes) -> None:
        """A protected packet that came over the stream."""
        self._received(data, None)

    @classmethod
    async def open(cls, role: str, keys: PipeKeys, on_datagram: Callable[[bytes], None], *,
                   local: tuple[str, int] = ("0.0.0.0", 0), remote: tuple[str, int] | None = None) -> PipeTransport:
        loop = asyncio.get_running_loop()
        end = cls(role, keys, on_datagram, remote=remote)
        await loop.create_datagram_endpoint(lambda: end, local_addr=local)
        if role == "node":
            end._keepalive = asyncio.ensure_future(end._keep_alive())
            end.send(build_rr(_KEEPALIVE_SSRC, []))  # the centre learns where the node is now
        return end

    @property
    def local_address(self) -> tuple[str, int]:
        assert self._transport is not None
        return self._transport.get_extra_info("sockname")[:2]  # type: ignore[no-any-return]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._received(data, addr)

    def _received(self, data: bytes, addr: tuple[str, int] | None) -> None:
        try:
            plain = self._rx.unprotect_rtcp(data) if is_rtcp(data) else self._rx.unprotect(data)
        except pylibsrtp.Error:
            self.stats.rejected += 1
            return
        self.stats.received += 1
        self.last_received = time.monotonic()
        if self.role == "centre" and addr is not None and addr != self.remote:
            if self.remote is not None:
                self.stats.address_changes += 1
            self.remote = addr  # only an authenticated packet moves the centre's idea of the node
        if is_rtcp(plain) and len(plain) >= 8 and int.from_bytes(plain[4:8], "big") == _KEEPALIVE_SSRC:
            now = time.monotonic()
            if self.role == "centre" and now - self._last_keepalive_answer >= ANSWER_SPACING_SECONDS:
                self._last_keepalive_answer = now  # the node learns that UDP gets through both ways
                self.send(build_rr(_KEEPALIVE_SSRC, []))
            return
        self._on_datagram(plain)

    def send(self, data: bytes) -> bool:
        """Protect and send one RTP or RTCP packet; False when there is nowhere (yet) to send it."""
        stream = self._stream
        if stream is None and (self._transport is None or self.remote is None or self._transport.is_closing()):
            return False
        try:
            protected = self._tx.protect_rtcp(data) if is_rtcp(data) else self._tx.protect(data)
        except pylibsrtp.Error:
            self.stats.send_errors += 1
            return False
        if stream is not None:
            stream(protected)
        else:
            assert self._transport is not None and self.remote is not None
            self._transport.sendto(protected, self.remote)
        self.stats.sent += 1
        return True

    async def _keep_alive(self) -> None:
        while True:
            probing = not self.last_received and self._stream is None
            await asyncio.sleep(PROBE_SECONDS if probing else KEEPALIVE_SECONDS)
            if probing and self.last_received:
                continue  # heard meanwhile: back to the keep-alive period
            self.send(build_rr(_KEEPALIVE_SSRC, []))

    def close(self) -> None:
        stream_close = getattr(self._stream, "close", None)
        if callable(stream_close):
            stream_close()
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._transport is not None:
            self._transport.close()
