"""Contract tests: one per seam in media/aiortc_seams.py. An aiortc/aioice upgrade that changes
any private internal the SFU relies on must fail here, loudly, before anything else."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import aioice
import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from sfu_harness import LOOPBACK, PatternTrack, ToneTrack, recv_frames, wait_for

from media import aiortc_seams as seams
from media.rtp_packet import RtpPacketView, build_rtp


def test_pinned_versions() -> None:
    assert version("aiortc") == "1.16.0"
    assert version("aioice") == "0.13.0"
    assert version("pylibsrtp") == "1.0.0"


def pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def test_neutralize_receiver_starts_no_decoder() -> None:
    conn = pc()
    transceiver = conn.addTransceiver("audio", direction="recvonly")
    receiver = transceiver.receiver
    assert inspect.iscoroutinefunction(RTCRtpReceiver.receive)
    assert list(inspect.signature(RTCRtpReceiver.receive).parameters) == ["self", "parameters"]
    # Behaviour: the unpatched receive() does start a decoder thread, and decoder_started sees it.
    other = conn.addTransceiver("audio", direction="recvonly").receiver
    other._track = RemoteStreamTrack(kind="audio")  # normally set by setRemoteDescription
    params = RTCRtpReceiveParameters(codecs=[RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)])
    await other.receive(params)
    assert seams.decoder_started(other)
    await other.stop()
    seams.neutralize_receiver(receiver)
    await receiver.receive(params)
    assert not seams.decoder_started(receiver)
    await receiver.stop()  # a no-op, must not hang
    with pytest.raises(seams.SeamError):
        seams.neutralize_receiver(other)  # already started
    await conn.close()


async def test_neutralize_sender_sends_nothing() -> None:
    conn = pc()
    sender = conn.addTransceiver("video", direction="sendonly").sender
    assert inspect.iscoroutinefunction(RTCRtpSender.send)
    assert getattr(sender, "_RTCRtpSender__started") is False
    seams.neutralize_sender(sender)
    await sender.send(None)
    assert getattr(sender, "_RTCRtpSender__rtp_task") is None
    assert getattr(sender, "_RTCRtpSender__rtcp_task") is None
    await sender.stop()
    await conn.close()


async def test_sender_ssrcs_and_msid_are_what_the_sdp_says() -> None:
    conn = pc()
    sender = conn.addTransceiver("video", direction="sendonly").sender
    ssrc, rtx = seams.sender_ssrcs(sender)
    seams.set_sender_msid(sender, "stream-x", "track-y")
    await conn.setLocalDescription(await conn.createOffer())
    sdp = conn.localDescription.sdp
    assert f"a=ssrc-group:FID {ssrc} {rtx}" in sdp
    assert "a=msid:stream-x track-y" in sdp
    await conn.close()


async def test_negotiated_parameters_and_remote_ssrcs() -> None:
    offerer, answerer = pc(), pc()
    offerer.addTransceiver("video", direction="sendonly")
    offerer.addTransceiver("audio", direction="sendonly")
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    video = answerer.getTransceivers()[0]
    codecs, extensions = seams.negotiated_parameters(video)
    assert codecs and all(isinstance(c, RTCRtpCodecParameters) for c in codecs)
    assert codecs[0].mimeType == "video/VP8" and codecs[1].mimeType == "video/rtx"
    assert {e.uri for e in extensions} >= {"urn:ietf:params:rtp-hdrext:sdes:mid"}
    sender = offerer.getTransceivers()[0].sender
    assert seams.remote_ssrcs(answerer, video.mid) == seams.sender_ssrcs(sender)
    audio_ssrc, audio_rtx = seams.remote_ssrcs(answerer, answerer.getTransceivers()[1].mid)
    assert audio_ssrc == offerer.getTransceivers()[1].sender._ssrc and audio_rtx is None
    assert seams.remote_ssrcs(answerer, "nope") == (None, None)
    # Parsed once per remote description, however many tracks ask.
    parses = []
    original = seams.aiortc_sdp.SessionDescription.parse
    seams.aiortc_sdp.SessionDescription.parse = lambda text: parses.append(1) or original(text)  # type: ignore[method-assign]
    try:
        for t in answerer.getTransceivers():
            seams.remote_ssrcs(answerer, t.mid)
    finally:
        seams.aiortc_sdp.SessionDescription.parse = original  # type: ignore[method-assign]
    assert len(parses) == 0  # parsed above already, for this same description
    await offerer.close()
    await answerer.close()


async def test_decode_with_rtp_timestamps_on_a_live_connection() -> None:
    """A plain aiortc client sends video; with the seam, every decoded frame's pts is the RTP
    timestamp of the packets it came from (unpatched aiortc rebases it to the first frame)."""
    sender, receiver = pc(), pc()
    sender.addTrack(PatternTrack())
    seams.configure_ice(sender, LOOPBACK, [])
    tracks: list[MediaStreamTrack] = []
    receiver.on("track", tracks.append)
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    seams.decode_with_rtp_timestamps(receiver.getTransceivers()[0].receiver)
    with pytest.raises(seams.SeamError):
        seams.decode_with_rtp_timestamps(object())  # type: ignore[arg-type]
    timestamps: set[int] = set()
    seams.configure_ice(receiver, LOOPBACK, [])
    await receiver.setLocalDescription(await receiver.createAnswer())
    seams.install_rtp_filter(seams.dtls_transports(receiver)[0],
                             lambda d: timestamps.add(RtpPacketView.parse(d).timestamp) or True)
    await sender.setRemoteDescription(receiver.localDescription)
    try:
        frames = await recv_frames(tracks[0], 5)
        assert all(f.pts in timestamps for f in frames), ([f.pts for f in frames], sorted(timestamps)[:5])
    finally:
        await sender.close()
        await receiver.close()


def test_dtls_transport_internals_exist() -> None:
    assert list(inspect.signature(RTCDtlsTransport._handle_rtp_data).parameters) == ["self", "data", "arrival_time_ms"]
    assert list(inspect.signature(RTCDtlsTransport._handle_rtcp_data).parameters) == ["self", "data"]
    source = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in source
    assert "await self._handle_rtcp_data(data)" in source
    assert "self._rx_srtp.unprotect" in source
    assert hasattr(State, "CONNECTED")
    assert "_nominated" in inspect.getsource(aioice.Connection.sendto)
    assert list(inspect.signature(aioice.Connection.get_component_candidates).parameters)[:3] == ["self", "component", "addresses"]


async def test_packet_hooks_and_srtp_egress_on_a_live_connection() -> None:
    """A plain aiortc client sends audio; the hooked side gets decrypted RTP/RTCP, and can send
    RTP back through SrtpEgress (the client's own hooks see it)."""
    client, server = pc(), pc()
    client.addTrack(ToneTrack(0.3))
    seams.configure_ice(client, LOOPBACK, [])
    await client.setLocalDescription(await client.createOffer())
    await server.setRemoteDescription(client.localDescription)
    for t in server.getTransceivers():
        seams.neutralize_receiver(t.receiver)
        seams.neutralize_sender(t.sender)
    rtp_in: list[bytes] = []
    rtcp_in: list[bytes] = []

    async def on_rtp(data: bytes, arrival_time_ms: int = 0) -> None:
        rtp_in.append(data)

    async def on_rtcp(data: bytes) -> None:
        rtcp_in.append(data)

    dtls = seams.dtls_transports(server)[0]
    assert seams.install_packet_hooks(dtls, on_rtp, on_rtcp)
    assert not seams.install_packet_hooks(dtls, on_rtp, on_rtcp)
    seams.configure_ice(server, LOOPBACK, [])
    await server.setLocalDescription(await server.createAnswer())
    await client.setRemoteDescription(server.localDescription)
    try:
        await wait_for(lambda: len(rtp_in) > 5 and rtcp_in, timeout=10)
        packet = RtpPacketView.parse(rtp_in[0])
        assert packet.ssrc == client.getSenders()[0]._ssrc

        back: list[bytes] = []
        seams.install_rtp_filter(seams.dtls_transports(client)[0], lambda d: back.append(d) or False)
        egress = seams.SrtpEgress(dtls)
        assert egress.connected
        assert egress.send_rtp(build_rtp(payload_type=96, sequence_number=1, timestamp=2, ssrc=77, payload=b"x"))
        assert egress.send_rtcp(b"\x80\xc9\x00\x01\x00\x00\x00\x4d")
        await wait_for(lambda: bool(back), timeout=5)
        assert RtpPacketView.parse(back[0]).ssrc == 77
        assert egress.sent_packets == 2
        # An index far behind the SRTP replay window is refused and counted, never raised.
        for seq in (40000, 1):
            egress.send_rtp(build_rtp(payload_type=96, sequence_number=seq, timestamp=2, ssrc=78, payload=b"x"))
    finally:
        await client.close()
        await server.close()
    assert not egress.connected
    assert not egress.send_rtp(b"\x80" + bytes(11))
    assert egress.dropped >= 1


def test_ingress_internals_exist() -> None:
    """SrtpIngress wraps each StunProtocol's datagram_received; aioice must still route non-STUN there."""
    source = inspect.getsource(aioice.ice.StunProtocol.datagram_received)
    assert "stun.parse_message(data)" in source and "self.receiver.data_received(data" in source
    assert "_protocols" in inspect.getsource(aioice.Connection.get_component_candidates) or \
        "_protocols" in inspect.getsource(aioice.Connection)
    assert "self._rx_srtp" in inspect.getsource(RTCDtlsTransport)


async def test_srtp_ingress_on_a_live_connection() -> None:
    """Media arrives through SrtpIngress (synchronously), filters apply, STUN/DTLS still work."""
    client, server = pc(), pc()
    client.addTrack(ToneTrack(0.3))
    seams.configure_ice(client, LOOPBACK, [])
    await client.setLocalDescription(await client.createOffer())
    await server.setRemoteDescription(client.localDescription)
    for t in server.getTransceivers():
        seams.neutralize_receiver(t.receiver)
        seams.neutralize_sender(t.sender)
    rtp_fast: list[int] = []
    rtcp_fast: list[bytes] = []
    dtls = seams.dtls_transports(server)[0]
    ingress = seams.SrtpIngress(dtls, lambda data, ms: rtp_fast.append(ms), rtcp_fast.append, lambda: 42)
    seams.configure_ice(server, LOOPBACK, [])
    await server.setLocalDescription(await server.createAnswer())
    assert ingress.install() >= 1
    assert ingress.install() == 0  # idempotent
    kept: list[bool] = []
    seams.install_rtp_filter(dtls, lambda d: kept.append(True) or len(kept) % 2 == 0)
    await client.setRemoteDescription(server.localDescription)
    try:
        await wait_for(lambda: len(rtp_fast) > 5 and rtcp_fast, timeout=10)
        assert set(rtp_fast) == {42}
        assert ingress.received >= len(rtp_fast) and len(kept) >= 2 * len(rtp_fast) - 1  # half filtered out
    finally:
        await client.close()
        await server.close()


async def test_configure_ice_binds_and_announces_addresses() -> None:
    conn = pc()
    conn.addTransceiver("audio", direction="sendonly")
    seams.configure_ice(conn, LOOPBACK, ["127.0.0.1", "203.0.113.7"])
    seams.configure_ice(conn, LOOPBACK, [])  # idempotent
    await conn.setLocalDescription(await conn.createOffer())
    candidates = [c for c in conn.localDescription.sdp.splitlines() if c.startswith("a=candidate")]
    hosts = [c.split()[4] for c in candidates]
    assert hosts == ["127.0.0.1", "203.0.113.7"]
    ports = {c.split()[5] for c in candidates}
    assert len(ports) == 1, "the announced (NAT) address shares the bound socket's port"
    await conn.close()


async def test_default_aiortc_never_offers_loopback() -> None:
    """Why configure_ice exists: aioice skips 127.0.0.1 on its own."""
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    await asyncio.sleep(0)


def test_cheaper_codec_matching_gives_what_aiortc_gives() -> None:
    from aiortc import rtcpeerconnection as aiortc_pc
    from aiortc.codecs import CODECS
    from aiortc.rtcrtpparameters import RTCRtcpFeedback

    fb = [RTCRtcpFeedback(type="nack"), RTCRtcpFeedback(type="nack", parameter="pli"),
          RTCRtcpFeedback(type="goog-remb")]
    chrome_video = [
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96, rtcpFeedback=fb[:2]),
        RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}),
        RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102, rtcpFeedback=fb,
                              parameters={"packetization-mode": "1", "profile-level-id": "42e01f"}),
        RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=103, parameters={"apt": 102}),
        RTCRtpCodecParameters(mimeType="video/AV1", clockRate=90000, payloadType=45),
    ]
    chrome_audio = [RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111,
                                          parameters={"minptime": 10, "useinbandfec": 1})]
    for local, remote in ((CODECS["video"], chrome_video), (CODECS["audio"], chrome_audio)):
        expected = seams._original_find_common_codecs(local, remote)
        got = seams._find_common_codecs(local, remote)
        assert got == expected and got
        got[0].rtcpFeedback.clear()
        got[0].parameters["x"] = 1
        assert seams._find_common_codecs(local, remote) == expected, "copies, not aliases of aiortc's table"
    seams.speed_up_negotiation()
    assert aiortc_pc.find_common_codecs is seams._find_common_codecs


async def test_fingerprint_cache_gives_what_aiortc_gives() -> None:
    from aiortc.rtcdtlstransport import RTCCertificate

    cert = RTCCertificate.generateCertificate()
    expected = seams._original_get_fingerprints(cert)
    seams.speed_up_negotiation()
    assert cert.getFingerprints() == expected == cert.getFingerprints()
    assert cert.getFingerprints() is not cert.getFingerprints()


async def test_enlarge_socket_buffers() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        before = transport.get_extra_info("socket").getsockopt(__import__("socket").SOL_SOCKET,
                                                              __import__("socket").SO_RCVBUF)
        rcv, snd = seams.enlarge_socket_buffers(transport, 4 * 1024 * 1024)
        assert rcv >= before and snd > 0
        assert seams.enlarge_socket_buffers(None, 1 << 20) == (0, 0)
    finally:
        transport.close()


def test_consent_internals_exist() -> None:
    from aioice import ice, stun

    assert "self.query_consent()" in inspect.getsource(ice.Connection.connect)
    assert isinstance(ice.CONSENT_INTERVAL, (int, float))
    assert {"retransmissions", "integrity_key"} <= set(inspect.signature(ice.StunProtocol.request).parameters)
    assert issubclass(stun.TransactionTimeout, stun.TransactionError)
    seams.speed_up_negotiation()
    assert aioice.Connection.query_consent is seams._query_consent


class _ConsentPair:
    """A nominated pair whose checks are answered while ``answering`` holds."""

    def __init__(self) -> None:
        self.answering = True
        self.retransmissions: list[int | None] = []
        self.remote_addr = ("127.0.0.1", 9)
        self.protocol = self

    async def request(self, request: object, addr: object, integrity_key: bytes | None = None,
                      retransmissions: int | None = None) -> None:
        from aioice import stun

        self.retransmissions.append(retransmissions)
        if not self.answering:
            raise stun.TransactionTimeout()


class _ConsentConnection:
    def __init__(self, pair: _ConsentPair) -> None:
        self.remote_password = "pw"
        self._nominated = {1: pair}
        self._query_consent_task: object = "running"
        self.closed = asyncio.Event()

    def build_request(self, pair: object, nominate: bool) -> object:
        return object()

    async def close(self) -> None:
        self.closed.set()


async def test_patient_consent_expires_on_time_not_on_slow_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks are retransmitted; unanswered checks close the connection only once no check was
    answered for CONSENT_EXPIRY_S (aioice closed it after six late answers in a row)."""
    from aioice import ice

    monkeypatch.setattr(ice, "CONSENT_INTERVAL", 0.01)
    monkeypatch.setattr(seams, "CONSENT_EXPIRY_S", 1.0)
    pair = _ConsentPair()
    connection = _ConsentConnection(pair)
    task = asyncio.ensure_future(seams._query_consent(connection))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.1)
        pair.answering = False
        lost = asyncio.get_running_loop().time()
        await asyncio.sleep(0.3)
        assert len(pair.retransmissions) > 3 and not connection.closed.is_set(), "expired before its time"
        await asyncio.wait_for(connection.closed.wait(), 3)
        # the last answered check came at most one interval (0.012 s) before the answers stopped
        assert asyncio.get_running_loop().time() - lost >= 1.0 - 0.05
        assert connection._query_consent_task is None
        assert set(pair.retransmissions) == {seams.CONSENT_RETRANSMISSIONS}
    finally:
        task.cancel()
