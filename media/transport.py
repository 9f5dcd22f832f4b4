"""WebRtcTransport: one aiortc peer connection of a participant, sending or receiving.

aiortc does ICE, DTLS, SRTP and SDP; the transport takes the decrypted RTP/RTCP (see
:mod:`media.aiortc_seams`) and demultiplexes it to producers (``direction="send"``: the
participant publishes) or to slots (``direction="recv"``: the participant subscribes; a
receiving connection is negotiated once with a :class:`media.slot_set.SlotSet`, see
:meth:`WebRtcTransport.create_slots`, and never again).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from . import aiortc_seams as seams
from .config import MediaConfig
from .errors import InvalidStateError, NegotiationError, NotFoundError
from .events import EventEmitter
from .parameters import StreamParameters
from .producer import Producer
from .demux import FeedbackTarget, dispatch_rtcp, learn_ssrc
from .rtcp import build_rr, parse_compound
from .rtp_packet import RtpPacketView, monotonic_ms
from .slot import DEFAULT_KEYFRAME_RETRY_MS
from .slot_set import DEFAULT_AUDIO_SLOTS, DEFAULT_VIDEO_SLOTS, SlotSet
from .slot_transport import new_slot_set
from .bandwidth import RembLossEstimator
from .site_budget import SiteBudget

if TYPE_CHECKING:
    from .router import Router

logger = logging.getLogger(__name__)

Direction = Literal["send", "recv"]


@dataclass(frozen=True)
class OfferedTrack:
    """A track the remote side offers to send (an m-line of a sending connection)."""

    mid: str
    kind: str


@dataclass
class TransportStats:
    rtp_received: int = 0
    rtcp_received: int = 0
    malformed_rtp: int = 0
    malformed_rtcp: int = 0
    unknown_ssrc: int = 0
    #: When the last RTP or RTCP packet from the peer arrived (``monotonic_ms``; 0: none yet): evidence
    #: that the peer is alive, read by signaling's liveness sweep.
    last_packet_ms: int = 0


def ice_servers(config: MediaConfig) -> list[RTCIceServer]:
    """RTCIceServer list from the config; empty by default, so no public server is contacted."""
    servers = []
    for url in config.ice_servers:
        if url.startswith("turn"):
            servers.append(RTCIceServer(urls=url, username=config.turn_username, credential=config.turn_credential))
        else:
            servers.append(RTCIceServer(urls=url))
    return servers


def stream_id_for(participant_id: str) -> str:
    """Opaque msid/CNAME for a participant (does not reveal the caller's id)."""
    return "s" + hashlib.sha256(participant_id.encode("utf8")).hexdigest()[:20]


class WebRtcTransport(EventEmitter):
    """Events: ``close`` (), ``connectionstatechange`` (state)."""

    def __init__(
        self,
        *,
        router: Router,
        transport_id: str,
        participant_id: str,
        direction: Direction,
        config: MediaConfig,
    ) -> None:
        super().__init__()
        if direction not in ("send", "recv"):
            raise ValueError(f"direction must be 'send' or 'recv', not {direction!r}")
        self.id = transport_id
        self.participant_id = participant_id
        self.direction = direction
        self.closed = False
        self.stats = TransportStats()
        self.producers: dict[str, Producer] = {}
        self._router = router
        self._config = config
        seams.speed_up_negotiation()
        self._pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice_servers(config), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._pc.on("connectionstatechange", self._on_connection_state)
        self._neutralized: set[int] = set()
        self._egress: seams.SrtpEgress | None = None
        self._ingress: seams.SrtpIngress | None = None
        self._producer_by_ssrc: dict[int, Producer] = {}
        #: Slots by their SSRC and RTX SSRC: where the subscriber's RTCP goes.
        self._feedback_by_ssrc: dict[int, FeedbackTarget] = {}
        #: The slots this receiving connection was negotiated with (:meth:`create_slots`), if any.
        self.slot_set: SlotSet | None = None
        #: The site's bandwidth budget over those slots (created with them).
        self.budget: SiteBudget | None = None
        self._slot_transceivers: dict[str, Any] = {}
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._rtcp_task: asyncio.Task[None] | None = None
        self.cname = stream_id_for(participant_id)

    def __repr__(self) -> str:
        return f"WebRtcTransport({self.id!r}, {self.direction}, participant={self.participant_id!r})"

    @property
    def connection_state(self) -> str:
        return self._pc.connectionState

    @property
    def peer_connection(self) -> RTCPeerConnection:
        """The aiortc peer connection (for inspection; signaling never needs it)."""
        return self._pc

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"{self!r} is closed")

    def _on_connection_state(self) -> None:
        state = self._pc.connectionState
        self.emit("connectionstatechange", state)
        if state == "connected" and self._rtcp_task is None and not self.closed:
            self._rtcp_task = asyncio.ensure_future(self._run_rtcp())
        if self.slot_set is not None:
            # A video slot starts its source at a keyframe the subscriber can receive: not before the
            # connection is up (a keyframe sent into a closed DTLS transport is lost, and the page
            # would wait for its own PLI).
            self.slot_set.set_link_up(state == "connected" and self._egress is not None and self._egress.connected)

    # -- negotiation ------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Take over every (new) transceiver and DTLS transport, configure ICE."""
        for transceiver in self._pc.getTransceivers():
            key = id(transceiver)
            if key not in self._neutralized:
                seams.neutralize_receiver(transceiver.receiver)
                seams.neutralize_sender(transceiver.sender)
                self._neutralized.add(key)
        for dtls in seams.dtls_transports(self._pc):
            if seams.install_packet_hooks(dtls, self._on_rtp_async, self._on_rtcp_async) and self._egress is None:
                self._egress = seams.SrtpEgress(dtls)
                self._ingress = seams.SrtpIngress(dtls, self._on_rtp, self._on_rtcp, monotonic_ms,
                                                  buffer_bytes=self._config.socket_buffer_bytes)
        self._install_ingress()

    def _install_ingress(self) -> None:
        """Route SRTP through the fast receive path on every ICE socket gathered so far."""
        if self._ingress is not None:
            self._ingress.install()
        seams.configure_ice(self._pc, self._config.ice_bind_addresses, self._config.announced_addresses)

    async def accept_offer(self, sdp: str) -> str:
        """Apply the remote offer and return the SDP answer."""
        self._check_open()
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            self._prepare()
            answer = await self._pc.createAnswer()
            await self._pc.setLocalDescription(answer)
        except NegotiationError:
            raise
        except Exception as exc:
            raise NegotiationError(f"cannot accept offer: {exc}") from exc
        self._install_ingress()  # the sockets exist once the local description is set
        return self._pc.localDescription.sdp

    async def create_offer(self) -> str:
        """The receiving connection's one offer: an m-line per slot (after :meth:`create_slots`)."""
        self._check_open()
        self._prepare()
        try:
            offer = await self._pc.createOffer()
            await self._pc.setLocalDescription(offer)
        except Exception as exc:
            raise NegotiationError(f"cannot create offer: {exc}") from exc
        self._install_ingress()
        return self._pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        """Apply the remote answer to :meth:`create_offer`."""
        self._check_open()
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise NegotiationError(f"cannot accept answer: {exc}") from exc
        self._prepare()
        self._configure_slots()

    def _configure_slots(self) -> None:
        """Configure each slot from what the answer negotiated for its m-line."""
        if self.slot_set is None:
            return
        for slot_id, transceiver in self._slot_transceivers.items():
            target = self.slot_set.slots[slot_id]
            if transceiver.currentDirection not in ("sendonly", "sendrecv"):
                continue
            codecs, extensions = seams.negotiated_parameters(transceiver)
            parameters = StreamParameters.from_negotiated(
                kind=transceiver.kind, mid=transceiver.mid, codecs=codecs, extensions=extensions
            )
            if target.parameters != parameters:
                target.configure(parameters)

    def offered_tracks(self) -> list[OfferedTrack]:
        """Tracks the remote side sends (after :meth:`accept_offer`), produced or not."""
        return [
            OfferedTrack(mid=t.mid, kind=t.kind)
            for t in self._pc.getTransceivers()
            if t.mid is not None and t.currentDirection in ("recvonly", "sendrecv")
        ]

    # -- producers --------------------------------------------------------------------------

    def produce(self, mid: str, *, producer_id: str | None = None, app_data: dict[str, Any] | None = None) -> Producer:
        """Create the producer for m-line ``mid`` of the accepted offer (sending transport)."""
        self._check_open()
        if self.direction != "send":
            raise InvalidStateError("produce() needs a sending transport")
        transceiver = next((t for t in self._pc.getTransceivers() if t.mid == mid), None)
        if transceiver is None:
            raise NotFoundError(f"no m-line {mid!r} in the accepted offer")
        if any(p.mid == mid for p in self.producers.values()):
            raise InvalidStateError(f"m-line {mid!r} is already produced")
        codecs, extensions = seams.negotiated_parameters(transceiver)
        parameters = StreamParameters.from_negotiated(kind=transceiver.kind, mid=mid, codecs=codecs, extensions=extensions)
        ssrc, rtx_ssrc = seams.remote_ssrcs(self._pc, mid)
        producer = Producer(
            producer_id=producer_id or self._router.new_id("producer"),
            participant_id=self.participant_id,
            stream_id=self.cname,
            parameters=parameters,
            ssrc=ssrc,
            rtx_ssrc=rtx_ssrc,
            rtcp_ssrc=self._rtcp_ssrc,
            send_rtcp=self._send_rtcp,
            rtx_history_ms=self._config.rtx_history_ms,
            pli_throttle_ms=self._config.pli_throttle_ms,
            on_audio_level=self._router.on_audio_level,
            app_data=app_data,
        )
        self.producers[producer.id] = producer
        for value in (ssrc, rtx_ssrc):
            if value is not None:
                self._producer_by_ssrc[value] = producer
        producer.on("close", lambda: self._forget_producer(producer))
        self._router.add_producer(producer)
        return producer

    def _forget_producer(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        for ssrc, owner in list(self._producer_by_ssrc.items()):
            if owner is producer:
                del self._producer_by_ssrc[ssrc]

    def _learn_ssrc(self, packet: RtpPacketView) -> Producer | None:
        producer = learn_ssrc(list(self.producers.values()), packet)
        if producer is not None:
            self._producer_by_ssrc[packet.ssrc] = producer
        return producer

    # -- slots ------------------------------------------------------------------------------

    def _add_sending_transceiver(self, kind: str) -> Any:
        """A sendonly transceiver whose aiortc sender and receiver only hold the SDP."""
        transceiver = self._pc.addTransceiver(kind, direction="sendonly")
        seams.neutralize_receiver(transceiver.receiver)
        seams.neutralize_sender(transceiver.sender)
        self._neutralized.add(id(transceiver))
        return transceiver

    def create_slots(
        self,
        *,
        videos: int = DEFAULT_VIDEO_SLOTS,
        audios: int = DEFAULT_AUDIO_SLOTS,
        keyframe_retry_ms: int = DEFAULT_KEYFRAME_RETRY_MS,
    ) -> SlotSet:
        """The fixed slots of this receiving connection: the stage (audio + video, one stream),
        ``videos`` thumbnails and ``audios`` extra audio slots, one sendonly m-line each.

        Call once, before the first :meth:`create_offer`; negotiate once (:meth:`create_offer`,
        :meth:`accept_answer`, which configures the slots). The router keeps the slots filled
        from then on (:meth:`Router.update_slots`), without SDP. Closing the transport closes the set."""
        self._check_open()
        if self.direction != "recv":
            raise InvalidStateError("create_slots() needs a receiving transport")
        if self.slot_set is not None:
            raise InvalidStateError(f"{self!r} already has its slots")
        if self._pc.localDescription is not None:
            raise InvalidStateError("create slots before the first offer: they are negotiated once")
        slot_set, self._slot_transceivers = new_slot_set(
            add_transceiver=self._add_sending_transceiver,
            subscriber_id=self.participant_id,
            cname=self.cname,
            send_rtp=self._send_rtp,
            send_rtcp=self._send_rtcp,
            videos=videos,
            audios=audios,
            keyframe_retry_ms=keyframe_retry_ms,
        )
        self.slot_set = slot_set
        slot_set.set_link_up(False)  # until the connection is up
        self._feedback_by_ssrc.update(slot_set.by_ssrc)
        slot_set.on("close", lambda: self._forget_slots(slot_set))
        config = self._config
        self._router.add_slot_set(slot_set)
        if not config.budget_enabled:
            return slot_set
        budget = self.budget = SiteBudget(
            slot_set, RembLossEstimator(config.budget_start_kbps * 1000), share=config.budget_share,
            up_after_ms=config.budget_up_after_ms)
        slot_set.on("close", budget.close)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # no loop (a synchronous test): the owner ticks the budget itself
        else:
            budget.start()
        return slot_set

    def slot_mid(self, slot_id: str) -> str | None:
        """The m-line of a slot (known once the offer exists)."""
        transceiver = self._slot_transceivers.get(slot_id)
        return transceiver.mid if transceiver is not None else None

    def _forget_slots(self, slot_set: SlotSet) -> None:
        for ssrc in slot_set.by_ssrc:
            self._feedback_by_ssrc.pop(ssrc, None)

    # -- packets ----------------------------------------------------------------------------

    def _send_rtp(self, data: bytes) -> bool:
        egress = self._egress
        return egress is not None and egress.send_rtp(data)

    def _send_rtcp(self, data: bytes) -> bool:
        egress = self._egress
        return egress is not None and egress.send_rtcp(data)

    async def _on_rtp_async(self, data: bytes, arrival_time_ms: int = 0) -> None:
        """Decrypted RTP through aiortc's own receive path (before the fast ingress takes over)."""
        self._on_rtp(data, arrival_time_ms)

    async def _on_rtcp_async(self, data: bytes) -> None:
        self._on_rtcp(data)

    def _on_rtp(self, data: bytes, arrival_time_ms: int = 0) -> None:
        """Decrypted RTP (seam): parse once, hand to the producer. Never raises."""
        stats = self.stats
        stats.rtp_received += 1
        stats.last_packet_ms = now = monotonic_ms()
        try:
            packet = RtpPacketView.parse(data, now)
        except ValueError as exc:
            self.stats.malformed_rtp += 1
            logger.debug("%r: malformed RTP dropped: %s", self, exc)
            return
        producer = self._producer_by_ssrc.get(packet.ssrc)
        if producer is None:
            producer = self._learn_ssrc(packet)
            if producer is None:
                self.stats.unknown_ssrc += 1
                return
        try:
            producer.handle_rtp(packet)
        except ValueError as exc:
            self.stats.malformed_rtp += 1
            logger.debug("%r: malformed RTP dropped: %s", self, exc)

    def _on_rtcp(self, data: bytes) -> None:
        """Decrypted RTCP (seam). Never raises on bad input."""
        self.stats.rtcp_received += 1
        self.stats.last_packet_ms = monotonic_ms()
        try:
            packets = parse_compound(data)
        except ValueError as exc:
            self.stats.malformed_rtcp += 1
            logger.debug("%r: malformed RTCP dropped: %s", self, exc)
            return
        dispatch_rtcp(packets, self._producer_by_ssrc, self._feedback_by_ssrc, self.budget)

    async def _run_rtcp(self) -> None:
        """Periodic RTCP: receiver reports upstream, sender reports to subscribers."""
        interval = self._config.rtcp_interval_ms / 1000
        try:
            while not self.closed:
                await asyncio.sleep(interval * (0.5 + random.random()))
                self.send_reports()
        except asyncio.CancelledError:
            pass

    def send_reports(self) -> None:
        blocks = [b for p in self.producers.values() if (b := p.report_block()) is not None]
        for i in range(0, len(blocks), 31):
            self._send_rtcp(build_rr(self._rtcp_ssrc, blocks[i : i + 31]))
        if self.slot_set is not None:
            self.slot_set.send_sender_reports()

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close producers and slots (cascading), then the peer connection; emits ``close``."""
        if self.closed:
            return
        self.closed = True
        for producer in list(self.producers.values()):
            producer.close()
        if self.slot_set is not None:
            self.slot_set.close()
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
        self._router.forget_transport(self)
        self.emit("close")
        self.remove_all_listeners()
        try:
            await self._pc.close()
        except Exception:  # noqa: BLE001 - closing must not fail the caller
            logger.debug("%r: error closing peer connection", self, exc_info=True)


