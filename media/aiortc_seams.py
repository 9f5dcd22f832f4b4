"""Every access to aiortc / aioice private internals, in one place (aiortc==1.16.0, aioice==0.13.0).

aiortc by itself decodes every received track and re-encodes per sender; an SFU keeps aiortc for
ICE, DTLS, SRTP and SDP and takes over RTP. Each function here is one *seam*; each has a contract
test in tests/media/test_aiortc_seams.py so an aiortc upgrade fails loudly instead of silently
falling back to decoding (or not forwarding at all).

Seams:
  * neutralize_receiver / neutralize_sender: server-side RTCRtpReceiver/RTCRtpSender become SDP
    holders only: their ``receive``/``send`` never start a decoder thread, encoder or RTCP loop.
  * decode_with_rtp_timestamps: a client-side receiver's decoded frames keep their RTP timestamp
    as pts (the bots match decoded pictures to the packets they came from).
  * sender_ssrcs / set_sender_msid: the SSRCs aiortc put in the SDP; per-publisher msid.
  * negotiated_parameters: the codecs/header extensions negotiated for a transceiver.
  * remote_ssrcs: the SSRC / RTX SSRC the remote description announced for an m-line.
  * install_packet_hooks: decrypted RTP/RTCP of a DTLS transport goes to the SFU, not aiortc.
  * install_rtp_filter / install_rtcp_filter: taps and loss injection on decrypted packets.
  * SrtpEgress: protect with the transport's SRTP session and send on the nominated ICE pair.
  * SrtpIngress: unprotect and dispatch SRTP straight from the socket callback (no STUN parse
    attempt, no queue, no coroutine hops); STUN and DTLS still take aioice's and aiortc's path.
  * configure_ice: host candidate addresses (bind and announced addresses, e.g. 127.0.0.1).
  * enlarge_socket_buffers: kernel buffers of the ICE sockets sized for bursts (a busy event loop
    must not lose STUN consent checks and media to a 200 KB default buffer).
  * patient_consent: aioice's consent freshness (RFC 7675) sends one check every ~5 s without
    retransmission and counts a response later than 0.5 s as a failure; six in a row close the
    connection. A 64 kbit/s site behind 300 ms and a full 250 ms queue answers later than that,
    so its connection was closed 30 s into the call. Replaced by checks with retransmissions,
    a response accepted for 3.5 s, and expiry 30 s after the last answered check (the RFC's rule).
  * speed_up_negotiation: process-wide, cheaper equivalents of two aiortc helpers that dominate the
    CPU of renegotiating large sessions (codec matching deep-copies every codec of every m-line;
    the DTLS certificate fingerprint is recomputed for every m-line of every description).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aioice
import ifaddr
import pylibsrtp
from aioice import ice as aioice_ice
from aioice import stun as aioice_stun
from aioice.candidate import candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc import codecs as aiortc_codecs
from aiortc import rtcpeerconnection as aiortc_pc
from aiortc import sdp as aiortc_sdp
from aiortc.rtcdtlstransport import RTCCertificate, RTCDtlsFingerprint, RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters

from .errors import SeamError

logger = logging.getLogger(__name__)

RtpHook = Callable[..., Awaitable[None]]
RtcpHook = Callable[[bytes], Awaitable[None]]

_HOOKED = "_cabinet_hooked"
_ICE_CONFIGURED = "_cabinet_ice_configured"


# -- receivers and senders -----------------------------------------------------------------


async def _no_receive(parameters: Any) -> None:
    """Replaces RTCRtpReceiver.receive: no decoder thread, no router registration, no RTCP loop."""


async def _no_send(parameters: Any) -> None:
    """Replaces RTCRtpSender.send: no encoder, no RTP loop, no (untruthful) sender reports."""


def neutralize_receiver(receiver: RTCRtpReceiver) -> None:
    """Make a server-side receiver an SDP holder only (its ``stop`` is then a no-op too)."""
    if getattr(receiver, "_RTCRtpReceiver__started", None) is not False:
        raise SeamError("RTCRtpReceiver.__started missing or receiver already started")
    receiver.receive = _no_receive  # type: ignore[method-assign]


def neutralize_sender(sender: RTCRtpSender) -> None:
    """Make a server-side sender an SDP holder only (its ``stop`` is then a no-op too)."""
    if getattr(sender, "_RTCRtpSender__started", None) is not False:
        raise SeamError("RTCRtpSender.__started missing or sender already started")
    sender.send = _no_send  # type: ignore[method-assign]


class _RtpTimestamps:
    """A stand-in for aiortc's TimestampMapper that leaves the RTP timestamp as it is."""

    @staticmethod
    def map(timestamp: int) -> int:
        return timestamp


def decode_with_rtp_timestamps(receiver: RTCRtpReceiver) -> None:
    """Decoded frames of this (client-side) receiver carry their frame's RTP timestamp as ``pts``.

    aiortc rebases pts to the first frame its jitter buffer gave out (an origin a client cannot
    see); a test client that matches each decoded picture to the packets it came from needs the
    timestamp itself. Call before the receiver gets media."""
    if not hasattr(receiver, "_RTCRtpReceiver__timestamp_mapper"):
        raise SeamError("RTCRtpReceiver.__timestamp_mapper missing")
    receiver._RTCRtpReceiver__timestamp_mapper = _RtpTimestamps()  # type: ignore[attr-defined]


def decoder_started(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc started this receiver's decoder thread (used by tests and assertions)."""
    return getattr(receiver, "_RTCRtpReceiver__decoder_thread", None) is not None


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """(SSRC, RTX SSRC) that aiortc announces in the SDP for this sender."""
    return sender._ssrc, sender._rtx_ssrc


def set_sender_msid(sender: RTCRtpSender, stream_id: str, track_id: str) -> None:
    """Set the ``a=msid`` of a sender: one stream per publisher, so browsers lip-sync its tracks."""
    sender._stream_id = stream_id
    sender._track_id = track_id


def negotiated_parameters(
    transceiver: RTCRtpTransceiver,
) -> tuple[list[RTCRtpCodecParameters], list[RTCRtpHeaderExtensionParameters]]:
    """Codecs (with the connection's payload types) and header extensions negotiated for an m-line."""
    return list(transceiver._codecs), list(transceiver._headerExtensions)


def remote_ssrcs(pc: RTCPeerConnection, mid: str) -> tuple[int | None, int | None]:
    """(media SSRC, RTX SSRC) announced by the remote description for m-line ``mid``.

    Read from the parsed description aiortc itself negotiated with (its private
    ``__remoteDescription()``), never through the public ``remoteDescription``: that property
    re-serializes the whole description, once per produced track, and raises ValueError on what
    aiortc accepted but cannot write back (a c= line whose address is not an IP address)."""
    current = getattr(pc, "_RTCPeerConnection__remoteDescription", None)
    if current is None:
        raise SeamError("RTCPeerConnection.__remoteDescription missing")
    parsed = current()
    if parsed is None:
        return None, None
    for media in parsed.media:
        if media.rtp.muxId != mid:
            continue
        ssrc = rtx = None
        for group in media.ssrc_group:
            if group.semantic == "FID" and len(group.items) == 2:
                first, second = _ssrc(group.items[0]), _ssrc(group.items[1])
                if first is not None and second is not None:
                    ssrc, rtx = first, second
        if ssrc is None and media.ssrc:
            ssrc = _ssrc(media.ssrc[0].ssrc)
        return ssrc, rtx
    return None, None


def _ssrc(value: object) -> int | None:
    """An SSRC is 32 bits; aiortc reads any integer. One outside that range counts as not announced
    (the producer learns its SSRC from the packets): kept, it broke every PLI and receiver report."""
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 0xFFFFFFFF else None


# -- packets ---------------------------------------------------------------------------------


def install_packet_hooks(dtls: RTCDtlsTransport, on_rtp: RtpHook, on_rtcp: RtcpHook) -> bool:
    """Route this DTLS transport's decrypted RTP/RTCP to the SFU. Returns False if already hooked.

    aiortc's ``_recv_next`` unprotects SRTP and awaits ``self._handle_rtp_data(data,
    arrival_time_ms=...)`` / ``self._handle_rtcp_data(data)``; instance attributes shadow them.
    """
    if getattr(dtls, _HOOKED, False):
        return False
    for name in ("_handle_rtp_data", "_handle_rtcp_data", "_recv_next"):
        if not callable(getattr(dtls, name, None)):
            raise SeamError(f"RTCDtlsTransport.{name} is missing")
    dtls._handle_rtp_data = on_rtp  # type: ignore[method-assign]
    dtls._handle_rtcp_data = on_rtcp  # type: ignore[method-assign]
    setattr(dtls, _HOOKED, True)
    return True


def _filters(dtls: RTCDtlsTransport, kind: str) -> list[Callable[[bytes], bool]]:
    """The taps/loss filters of a DTLS transport, shared by aiortc's receive path and SrtpIngress."""
    name = f"_cabinet_{kind}_filters"
    found: list[Callable[[bytes], bool]] | None = getattr(dtls, name, None)
    if found is None:
        found = []
        setattr(dtls, name, found)
    return found


def install_rtp_filter(dtls: RTCDtlsTransport, keep: Callable[[bytes], bool]) -> None:
    """Decrypted RTP for which ``keep`` is False vanishes (both receive paths).

    For loss injection and taps (tests, diagnostics); works on top of install_packet_hooks and
    SrtpIngress, and on plain aiortc clients alike.
    """
    filters = _filters(dtls, "rtp")
    if not filters:
        inner = dtls._handle_rtp_data

        async def filtered(data: bytes, arrival_time_ms: int = 0) -> None:
            if all(f(data) for f in filters):
                await inner(data, arrival_time_ms=arrival_time_ms)

        dtls._handle_rtp_data = filtered  # type: ignore[method-assign]
    filters.append(keep)


def install_rtcp_filter(dtls: RTCDtlsTransport, keep: Callable[[bytes], bool]) -> None:
    """Like install_rtp_filter, for decrypted RTCP."""
    filters = _filters(dtls, "rtcp")
    if not filters:
        inner = dtls._handle_rtcp_data

        async def filtered(data: bytes) -> None:
            if all(f(data) for f in filters):
                await inner(data)

        dtls._handle_rtcp_data = filtered  # type: ignore[method-assign]
    filters.append(keep)


def dtls_transports(pc: RTCPeerConnection) -> list[RTCDtlsTransport]:
    """The distinct DTLS transports carrying the peer connection's media (one under BUNDLE)."""
    seen: list[RTCDtlsTransport] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        if dtls not in seen:
            seen.append(dtls)
    return seen


class SrtpEgress:
    """Synchronous SRTP send on a DTLS transport: protect + sendto on the nominated ICE pair.

    Bypasses ``RTCDtlsTransport._send_rtp`` and aioice's coroutine chain (three awaits per
    packet). Returns False, and counts, when the transport cannot send (not yet connected,
    closed, no nominated pair).
    """

    __slots__ = ("_dtls", "_connection", "dropped", "sent_packets", "sent_bytes")

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._connection: aioice.Connection = dtls.transport._connection
        self.dropped = 0
        self.sent_packets = 0
        self.sent_bytes = 0

    @property
    def connected(self) -> bool:
        return self._dtls._state == State.CONNECTED

    def _sendto(self, data: bytes) -> bool:
        pair = self._connection._nominated.get(1)
        if pair is None:
            self.dropped += 1
            return False
        pair.protocol.transport.sendto(data, pair.remote_addr)
        self.sent_packets += 1
        self.sent_bytes += len(data)
        return True

    def send_rtp(self, plain: bytes) -> bool:
        dtls = self._dtls
        if dtls._state is not State.CONNECTED:
            self.dropped += 1
            return False
        try:
            protected = dtls._tx_srtp.protect(plain)
        except (pylibsrtp.Error, ValueError):  # e.g. index too old for the replay window
            self.dropped += 1
            return False
        return self._sendto(protected)

    def send_rtcp(self, plain: bytes) -> bool:
        dtls = self._dtls
        if dtls._state is not State.CONNECTED:
            self.dropped += 1
            return False
        try:
            protected = dtls._tx_srtp.protect_rtcp(plain)
        except (pylibsrtp.Error, ValueError):
            self.dropped += 1
            return False
        return self._sendto(protected)


_INGRESS = "_cabinet_ingress"


class SrtpIngress:
    """Synchronous SRTP receive on a DTLS transport's ICE sockets.

    aioice hands every datagram to ``StunProtocol.datagram_received``, which first tries to parse
    it as STUN (raising ValueError for media), then queues it for aiortc's receive coroutine, which
    awaits it, checks the first byte, unprotects and awaits the packet handler. Here RTP and RTCP
    (first byte 128-191) are unprotected and dispatched at once, once the SRTP session exists;
    everything else (STUN, DTLS, media before the handshake) goes the usual way.
    """

    __slots__ = ("_dtls", "_on_rtp", "_on_rtcp", "_clock", "received", "dropped", "_protocols",
                 "_rtp_filters", "_rtcp_filters", "buffer_bytes")

    def __init__(self, dtls: RTCDtlsTransport, on_rtp: Callable[[bytes, int], None],
                 on_rtcp: Callable[[bytes], None], clock: Callable[[], int], *, buffer_bytes: int = 0) -> None:
        self.buffer_bytes = buffer_bytes
        self._dtls = dtls
        self._on_rtp = on_rtp
        self._on_rtcp = on_rtcp
        self._clock = clock
        self.received = 0
        self.dropped = 0
        self._protocols: set[int] = set()
        self._rtp_filters = _filters(dtls, "rtp")
        self._rtcp_filters = _filters(dtls, "rtcp")

    def install(self) -> int:
        """Take over the sockets gathered so far (call again after gathering); returns how many."""
        connection: aioice.Connection = self._dtls.transport._connection
        added = 0
        for protocol in connection._protocols:
            if id(protocol) in self._protocols or getattr(protocol, _INGRESS, None) is not None:
                continue
            original = protocol.datagram_received

            def datagram_received(data: bytes, addr: Any, _original: Callable[..., None] = original) -> None:
                if data and 127 < data[0] < 192 and self._dtls._rx_srtp is not None:
                    self._handle(data)
                else:
                    _original(data, addr)

            protocol.datagram_received = datagram_received  # type: ignore[method-assign]
            if self.buffer_bytes:
                enlarge_socket_buffers(protocol.transport, self.buffer_bytes)
            setattr(protocol, _INGRESS, self)
            self._protocols.add(id(protocol))
            added += 1
        return added

    def _handle(self, data: bytes) -> None:
        srtp = self._dtls._rx_srtp
        try:
            if len(data) > 1 and 192 <= data[1] <= 208:
                plain = srtp.unprotect_rtcp(data)
                self.received += 1
                if not self._rtcp_filters or all(f(plain) for f in self._rtcp_filters):
                    self._on_rtcp(plain)
            else:
                plain = srtp.unprotect(data)
                self.received += 1
                if not self._rtp_filters or all(f(plain) for f in self._rtp_filters):
                    self._on_rtp(plain, self._clock())
        except (pylibsrtp.Error, ValueError):  # failed authentication, replay, garbage
            self.dropped += 1


# -- sockets ---------------------------------------------------------------------------------

_FORCE = {socket.SO_RCVBUF: getattr(socket, "SO_RCVBUFFORCE", None),
          socket.SO_SNDBUF: getattr(socket, "SO_SNDBUFFORCE", None)}


def enlarge_socket_buffers(transport: Any, size: int) -> tuple[int, int]:
    """Ask for ``size``-byte kernel receive and send buffers on a datagram transport's socket.

    The privileged ``*BUFFORCE`` options are tried first (root, or CAP_NET_ADMIN), then the plain
    ones (capped by net.core.rmem_max / wmem_max). Returns what the kernel granted.
    """
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return (0, 0)
    for option, force in _FORCE.items():
        for opt in (force, option):
            if opt is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
                break
            except OSError:
                continue
    return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))


# -- negotiation cost ----------------------------------------------------------------------------

_original_find_common_codecs = aiortc_pc.find_common_codecs
_original_get_fingerprints = RTCCertificate.getFingerprints


def _clone_codec(codec: RTCRtpCodecParameters) -> RTCRtpCodecParameters:
    # What copy.deepcopy gives, for a dataclass whose fields are immutable scalars, a list of
    # RTCRtcpFeedback (never mutated in place by aiortc) and a dict of scalars; ~20x cheaper.
    return dataclasses.replace(codec, rtcpFeedback=list(codec.rtcpFeedback), parameters=dict(codec.parameters))


def _find_common_codecs(local_codecs: list[RTCRtpCodecParameters],
                        remote_codecs: list[RTCRtpCodecParameters]) -> list[RTCRtpCodecParameters]:
    """aiortc's ``find_common_codecs`` (1.16.0), line for line, with cheap copies; and RED takes the
    remote's PT and names the common Opus PT in its fmtp (aiortc does not know RED's fmtp refers to a PT)."""
    common: list[RTCRtpCodecParameters] = []
    common_base: dict[int, RTCRtpCodecParameters] = {}
    for c in remote_codecs:
        if aiortc_pc.is_rtx(c):
            apt = c.parameters.get("apt")
            if isinstance(apt, int) and apt in common_base:
                base = common_base[apt]
                if c.clockRate == base.clockRate:
                    common.append(_clone_codec(c))
            continue
        for codec in local_codecs:
            if aiortc_pc.is_codec_compatible(codec, c):
                codec = _clone_codec(codec)
                if c.payloadType in aiortc_pc.rtp.DYNAMIC_PAYLOAD_TYPES:
                    codec.payloadType = c.payloadType
                codec.rtcpFeedback = [x for x in codec.rtcpFeedback if x in c.rtcpFeedback]
                if codec.mimeType.lower() == "audio/red":
                    codec.payloadType = c.payloadType
                common.append(codec)
                common_base[codec.payloadType] = codec
                break
    opus = next((c.payloadType for c in common if c.mimeType.lower() == "audio/opus"), None)
    for codec in common:
        if codec.mimeType.lower() == "audio/red":
            if opus is None:
                common.remove(codec)  # redundancy of nothing
                break
            codec.parameters = {f"{opus}/{opus}": None}
    return common


_FINGERPRINTS = "_cabinet_fingerprints"


def _get_fingerprints(self: RTCCertificate) -> list[RTCDtlsFingerprint]:
    cached = self.__dict__.get(_FINGERPRINTS)
    if cached is None:
        cached = _original_get_fingerprints(self)
        self.__dict__[_FINGERPRINTS] = cached
    return list(cached)


def speed_up_negotiation() -> None:
    """Install the cheaper codec matching and fingerprint cache, RED and the patient consent checks
    (idempotent, process-wide)."""
    aiortc_pc.find_common_codecs = _find_common_codecs
    RTCCertificate.getFingerprints = _get_fingerprints  # type: ignore[method-assign]
    enable_red()
    patient_consent()


#: Consent checks: retransmitted at 0.5 and 1.5 s (a response counts until 3.5 s), and consent
#: expires this long after the last answered check (RFC 7675 section 5.1).
CONSENT_RETRANSMISSIONS = 2
CONSENT_EXPIRY_S = 30.0


async def _query_consent(self: aioice.Connection) -> None:
    """aioice's ``Connection.query_consent`` with retransmissions and a time-based expiry."""
    assert self.remote_password is not None
    loop = asyncio.get_running_loop()
    answered = loop.time()
    while True:
        await asyncio.sleep(aioice_ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
        for pair in list(self._nominated.values()):
            request = self.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(request, pair.remote_addr,
                                            integrity_key=self.remote_password.encode("utf8"),
                                            retransmissions=CONSENT_RETRANSMISSIONS)
                answered = loop.time()
            except aioice_stun.TransactionError:
                pass
        if loop.time() - answered > CONSENT_EXPIRY_S:
            logger.info("ICE consent expired: no check answered for %.0f s", loop.time() - answered)
            self._query_consent_task = None
            await self.close()
            return


def patient_consent() -> None:
    """Install :func:`_query_consent` as every aioice connection's consent check (idempotent)."""
    aioice.Connection.query_consent = _query_consent  # type: ignore[method-assign]


#: RED for Opus (RFC 2198; Chromium's PT and fmtp form "<opus pt>/<opus pt>").
RED_PAYLOAD_TYPE = 63
#: What the server asks of a publisher's Opus encoder (the fmtp of our answer): in-band FEC (a lost
#: packet's speech at lower quality in the next one; the encoder spends on it as its receiver
#: reports loss, media/producer.py reports the worst subscriber's), DTX, and at most 24 kbit/s so
#: that audio with its headers fits a 64 kbit/s site (BENCHMARKS.md, "Audio at the 64 kbit/s floor").
OPUS_FMTP: dict[str, int] = {"minptime": 10, "useinbandfec": 1, "usedtx": 1, "maxaveragebitrate": 24000}


def enable_red() -> None:
    """Add ``red/48000/2`` to aiortc's audio codecs, after Opus, and :data:`OPUS_FMTP` to Opus
    (idempotent). aiortc never sends or receives RED itself (our slots and producers do,
    media/red.py); it only has to negotiate it. The fmtp names aiortc's own Opus PT: an answerer
    echoes the offer's numbers (and :func:`_find_common_codecs` corrects them)."""
    audio = aiortc_codecs.CODECS["audio"]
    opus = next(c for c in audio if c.mimeType.lower() == "audio/opus")
    opus.parameters.update(OPUS_FMTP)
    if any(c.mimeType.lower() == "audio/red" for c in audio):
        return
    red = RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2, payloadType=RED_PAYLOAD_TYPE,
                                parameters={f"{opus.payloadType}/{opus.payloadType}": None})
    audio.insert(audio.index(opus) + 1, red)


# -- ICE -------------------------------------------------------------------------------------


def _local_interface_addresses() -> set[str]:
    addresses = {"127.0.0.1", "::1"}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            addresses.add(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
    return addresses


def configure_ice(
    pc: RTCPeerConnection, bind_addresses: list[str], announced_addresses: list[str]
) -> None:
    """Control the host candidates of every ICE gatherer of ``pc`` (call before gathering).

    ``bind_addresses`` (if any) replaces aioice's interface list (which never includes
    127.0.0.1). An announced address that is a local interface address is bound as well; any
    other (a public address in front of 1:1 NAT) is announced as an extra host candidate on the
    port of the first IPv4 host socket.
    """
    if not bind_addresses and not announced_addresses:
        return
    local = _local_interface_addresses()
    bindable = [a for a in announced_addresses if a in local]
    aliases = [a for a in announced_addresses if a not in local]
    for transceiver in pc.getTransceivers():
        gatherer = transceiver.receiver.transport.transport.iceGatherer
        connection: aioice.Connection = gatherer._connection
        if getattr(connection, _ICE_CONFIGURED, False):
            continue
        original = connection.get_component_candidates

        async def get_component_candidates(
            component: int,
            addresses: list[str],
            timeout: int = 5,
            _original: Callable[..., Awaitable[list[aioice.Candidate]]] = original,
        ) -> list[aioice.Candidate]:
            chosen = list(bind_addresses) if bind_addresses else list(addresses)
            chosen += [a for a in bindable if a not in chosen]
            candidates = await _original(component=component, addresses=chosen, timeout=timeout)
            base = next(
                (c for c in candidates if c.type == "host" and ipaddress.ip_address(c.host).version == 4),
                None,
            )
            if base is not None:
                for address in aliases:
                    candidates.append(
                        aioice.Candidate(
                            foundation=candidate_foundation("host", "udp", address),
                            component=component,
                            transport="udp",
                            priority=candidate_priority(component, "host"),
                            host=address,
                            port=base.port,
                            type="host",
                        )
                    )
            return candidates

        connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]
        setattr(connection, _ICE_CONFIGURED, True)
