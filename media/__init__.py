"""Cabinet's SFU: packet-level WebRTC forwarding on aiortc (ICE, DTLS, SRTP, SDP from aiortc).

media/ knows nothing of databases, HTTP, socket.io or templates. Signaling drives it through the
control API below; participants, producers, consumers and transports are identified by opaque
string ids (the caller's, or generated).

Control API
===========

Object model (mediasoup's nouns; closing cascades and every object emits ``close``)::

    router = Router(MediaConfig(...), router_id="meeting-42")       # one per meeting
    router.close()            -> closes transports -> producers -> consumers  (async)

Publishing (participant -> server), the browser offers::

    send = router.create_transport(participant_id, "send")
    answer_sdp = await send.accept_offer(offer_sdp)                  # also for re-offers
    send.offered_tracks()     -> [OfferedTrack(mid, kind), ...]
    producer = send.produce(mid, producer_id=None, app_data=None)
    producer.pause() / producer.resume()                             # publisher muted itself
    producer.close()

Subscribing (server -> participant), the server offers (aiortc has no negotiationneeded; the
transport emits ``negotiationneeded`` after consume() or a consumer's close)::

    recv = router.create_transport(participant_id, "recv")
    consumer = recv.consume(producer_or_id, consumer_id=None, paused=False)
    offer_sdp = await recv.create_offer()
    await recv.accept_answer(answer_sdp)                             # packets flow from here
    consumer.pause() / consumer.resume() / consumer.close()

Subscribing with slots (issue 11: negotiated once, no renegotiation while people come and go)::

    recv = router.create_transport(participant_id, "recv")
    slots = recv.create_slots(videos=8, audios=2)        # stage audio+video, thumbnails, extra audio
    offer_sdp = await recv.create_offer()                # one m-line per slot, slots.slot_ids() order
    await recv.accept_answer(answer_sdp)                 # configures every slot; never again
    slots.update(Wanted(...), router.producers)          # move producers between slots, no SDP
    slots.on("switch", callback)                         # SlotSwitch(slot_id, producer_id, sequence, ...)
    # a receiving aiortc client must use bundlePolicy=MAX_BUNDLE (see tests/media/test_slot_e2e.py)

Server-side control::

    router.set_producer_muted(producer_id, True)        # stop forwarding (enforced mute)
    router.set_participant_audio_muted(participant_id, True)   # floor control
    router.set_pinned({chair_id, floor_holder_id})      # always in everybody's last-N
    router.set_last_n(subscriber_id, n | None)          # per-subscriber N (default config.last_n)
    producer.request_keyframe()                         # PLI upstream, throttled
    await transport.close()

Events (``obj.on(name, callback)``, callbacks are synchronous)::

    Router:    producer_added(producer), producer_closed(producer), consumer_added(consumer),
               consumer_closed(consumer), transport_closed(transport),
               dominant_speaker_changed(participant_id | None),
               last_n_changed(subscriber_id, frozenset[producer_id]),
               keyframe_requested(producer), close()
    Transport: connectionstatechange(state), negotiationneeded(), close()
    Producer:  pause(), resume(), mute(muted), keyframerequest(), close()
    Consumer:  pause(), resume(), active(forwarding), producerclose(), close()
    SlotSet:   switch(SlotSwitch), close()        Slot: switch(SlotSwitch), close()

Statistics: ``transport.stats`` (malformed/unknown packets), ``producer.stats``,
``consumer.stats`` (sent, retransmitted, NACKs, PLIs, RTT, REMB).

The forwarding path: decrypted RTP is parsed once (RtpPacketView), NACK-tracked and stored in a
time-sized history on the producer, then each consumer rewrites SSRC / sequence number /
timestamp / payload type / header extensions, serializes, SRTP-protects and sends (SrtpEgress).
No decoder or encoder ever runs on the server. aiortc internals are only touched in
media/aiortc_seams.py.
"""

from __future__ import annotations

from .config import MediaConfig
from .consumer import Consumer, ConsumerStats
from .errors import (
    InvalidStateError,
    MediaError,
    NegotiationError,
    NotFoundError,
    SeamError,
    UnsupportedError,
)
from .events import EventEmitter
from .last_n import select_last_n
from .producer import Producer, ProducerStats
from .router import Router
from .speaker import DominantSpeakerDetector
from .slot import Slot, SlotSwitch
from .slot_assignment import Wanted
from .slot_set import SlotSet
from .transport import OfferedTrack, TransportStats, WebRtcTransport

__all__ = [
    "Consumer",
    "ConsumerStats",
    "DominantSpeakerDetector",
    "EventEmitter",
    "InvalidStateError",
    "MediaConfig",
    "MediaError",
    "NegotiationError",
    "NotFoundError",
    "OfferedTrack",
    "Producer",
    "ProducerStats",
    "Router",
    "SeamError",
    "Slot",
    "SlotSet",
    "SlotSwitch",
    "TransportStats",
    "UnsupportedError",
    "Wanted",
    "WebRtcTransport",
    "select_last_n",
]
