"""SDP target: the ``sdp`` field of a ``publish`` (an offer) or an ``answer`` message.

What the server does with it, step by step, and what each step may answer:
  1. signaling/validation.py's checks of the publish and the answer schemas: ``InvalidMessage``;
  2. aiortc's parse (aiortc.sdp.SessionDescription.parse), the first thing setRemoteDescription does:
     any Exception (WebRtcTransport.accept_offer / accept_answer turn it into NegotiationError);
  3. for an offer: setRemoteDescription and createAnswer on a real RTCPeerConnection (with the
     server's negotiation seams installed): any Exception, as in 2;
  4. WebRtcTransport.produce for every track the offer sends, outside accept_offer's guard:
     negotiated parameters (MediaError allowed), remote_ssrcs and the Producer itself (nothing allowed);
  5. for an answer: each m-line negotiated as aiortc's setRemoteDescription does against the server's
     offer of slots (its own find_common_codecs / find_common_header_extensions, reduced to the slot
     codecs the offer preferred: media/slot_transport.py), then Slot.configure, as
     WebRtcTransport.accept_answer runs it outside its guard: MediaError only.
Properties: the media sections the validator counts (media_count, which bounds a publish to
MAX_PUBLISH_MEDIA and must match the offer in an answer) are the media sections aiortc parses.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc import sdp as aiortc_sdp
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcdtlstransport import RTCCertificate
from aiortc import rtcpeerconnection as aiortc_pc
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.rtcpeerconnection import and_direction, filter_preferred_codecs

from fuzz import check
from media import aiortc_seams as seams
from media.errors import MediaError
from media.parameters import StreamParameters
from media.producer import Producer
from media.slot import Slot
from media.slot_transport import slot_codec_preferences
from signaling.config import SignalingConfig
from signaling.errors import InvalidMessage
from signaling.validation import MAX_PUBLISH_MEDIA, media_count, sdp


_MAX_BYTES = SignalingConfig().max_message_bytes
_PUBLISH = sdp(_MAX_BYTES, MAX_PUBLISH_MEDIA)
_ANSWER = sdp(_MAX_BYTES)
_LOOP = asyncio.new_event_loop()


def _aiortc_connect_task(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """aiortc 1.16 starts RTCPeerConnection.__connect after every setRemoteDescription; for some malformed
    offers (the server refuses them with NegotiationError) that task fails on a transceiver without a
    DTLS transport ('Task exception was never retrieved': aiortc's, not the server's). Not counted
    here, nor printed a thousand times; anything else goes to the default handler."""
    task = context.get("future")
    coro = getattr(task, "get_coro", lambda: None)()
    if getattr(coro, "__qualname__", "") == "RTCPeerConnection.__connect" and isinstance(context.get("exception"), AttributeError):
        return
    loop.default_exception_handler(context)


_LOOP.set_exception_handler(_aiortc_connect_task)
_CERTIFICATE = RTCCertificate.generateCertificate()
# One DTLS certificate for every peer connection of the campaign: generating one per input would
# be most of the cost, and the certificate plays no part in reading the remote description.
RTCCertificate.generateCertificate = classmethod(lambda cls: _CERTIFICATE)  # type: ignore[method-assign,assignment]
seams.speed_up_negotiation()
#: What a slot's m-line of the server's offer prefers (VP8 + RTX, Opus), by kind.
_SLOT_CODECS = {kind: slot_codec_preferences(kind) for kind in ("audio", "video")}


def _validated(check_sdp: object, text: str) -> str | None:
    try:
        return check_sdp("sdp", text)  # type: ignore[operator,no-any-return]
    except InvalidMessage:
        return None


async def _negotiate(text: str) -> None:
    """What WebRtcTransport.accept_offer and then produce() do with an accepted offer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="offer"))
        await pc.createAnswer()
    except Exception:  # noqa: BLE001 - accept_offer answers NegotiationError
        return
    for transceiver in pc.getTransceivers():
        # setLocalDescription(answer) sets this before gathering candidates (not run here: no sockets).
        if transceiver._offerDirection is not None:
            transceiver._setCurrentDirection(and_direction(transceiver.direction, transceiver._offerDirection))
        # WebRtcTransport.offered_tracks, then produce() for each.
        if transceiver.mid is None or transceiver.currentDirection not in ("recvonly", "sendrecv"):
            continue
        codecs, extensions = seams.negotiated_parameters(transceiver)
        try:
            parameters = StreamParameters.from_negotiated(kind=transceiver.kind, mid=transceiver.mid,
                                                          codecs=codecs, extensions=extensions)
        except MediaError:
            continue
        ssrc, rtx_ssrc = seams.remote_ssrcs(pc, transceiver.mid)
        check(ssrc is None or 0 <= ssrc < 1 << 32, f"remote SSRC {ssrc} is not 32 bits")
        check(rtx_ssrc is None or 0 <= rtx_ssrc < 1 << 32, f"remote RTX SSRC {rtx_ssrc} is not 32 bits")
        producer = Producer(producer_id="p", participant_id="pub", stream_id="s", parameters=parameters,
                            ssrc=ssrc, rtx_ssrc=rtx_ssrc, rtcp_ssrc=1, send_rtcp=lambda data: True,
                            rtx_history_ms=1000, pli_throttle_ms=500)
        producer.close()


def one_input(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    offer = _validated(_PUBLISH, text)
    answer = _validated(_ANSWER, text)
    if answer is None:
        check(offer is None, "the publish check accepts an SDP the answer check refuses")
        return
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    counted = media_count(text)
    check(counted == sum(line.startswith("m=") for line in lines), "media_count disagrees with the lines")
    check(offer is None or 1 <= counted <= MAX_PUBLISH_MEDIA, f"a publish offer with {counted} media sections")
    try:
        parsed = aiortc_sdp.SessionDescription.parse(text)
    except Exception:  # noqa: BLE001 - accept_offer / accept_answer answer NegotiationError
        return
    check(len(parsed.media) == counted,
          f"the validator counts {counted} media sections, aiortc parses {len(parsed.media)}")
    if offer is not None:
        _LOOP.run_until_complete(_negotiate(text))
    _configure_slots(parsed)


def _configure_slots(parsed: aiortc_sdp.SessionDescription) -> None:
    """What WebRtcTransport.accept_answer does with a subscriber's answer, per m-line (one per slot):
    aiortc's own codec and header extension negotiation (as setRemoteDescription runs it against the
    server's offer, whose slot m-lines prefer the slot codecs), then Slot.configure, outside
    accept_answer's guard (MediaError allowed)."""
    for index, media in enumerate(parsed.media):
        if media.kind not in _SLOT_CODECS:
            continue
        try:  # inside setRemoteDescription: whatever it raises, accept_answer answers NegotiationError
            codecs = filter_preferred_codecs(aiortc_pc.find_common_codecs(CODECS[media.kind], media.rtp.codecs),
                                             _SLOT_CODECS[media.kind])
            extensions = aiortc_pc.find_common_header_extensions(HEADER_EXTENSIONS[media.kind],
                                                                 media.rtp.headerExtensions)
        except Exception:  # noqa: BLE001
            continue
        if not codecs:
            continue  # aiortc: OperationError, answered as NegotiationError
        slot = Slot(slot_id=f"{media.kind}-0", kind=media.kind, ssrc=3, rtx_ssrc=4, cname="s",  # type: ignore[arg-type]
                    stream_id=f"{media.kind}-0", send_rtp=lambda data: True, send_rtcp=lambda data: True)
        try:
            parameters = StreamParameters.from_negotiated(kind=media.kind, mid=str(index), codecs=codecs,
                                                          extensions=extensions)
            slot.configure(parameters)
        except MediaError:
            continue
        finally:
            slot.close()

