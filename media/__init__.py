"""Cabinet's SFU: packet-level WebRTC forwarding on aiortc (ICE, DTLS, SRTP, SDP from aiortc).

media/ knows nothing of databases, HTTP, socket.io or templates. Signaling drives it through the
control API below; participants, producers, slots and transports are identified by opaque
string ids (the caller's, or generated).

Control API
===========

Object model (mediasoup's nouns; closing cascades and every object emits ``close``)::

    router = Router(MediaConfig(...), router_id="meeting-42")       # one per meeting
    router.close()            -> closes transports -> producers and slots  (async)

Publishing (participant -> server), the browser offers::

    send = router.create_transport(participant_id, "send")
    answer_sdp = await send.accept_offer(offer_sdp)                  # also for re-offers
    send.offered_tracks()     -> [OfferedTrack(mid, kind), ...]
    producer = send.produce(mid, producer_id=None, app_data=None)
    producer.pause() / producer.resume()                             # publisher muted itself
    producer.close()

Subscribing: slots, negotiated once (no renegotiation while people come and go)::

    recv = router.create_transport(participant_id, "recv")
    slots = recv.create_slots(videos=8, audios=2)        # stage audio+video, thumbnails, extra audio
    offer_sdp = await recv.create_offer()                # one m-line per slot, slots.slot_ids() order
    await recv.accept_answer(answer_sdp)                 # configures every slot; never again
    slots.on("switch", callback)                         # SlotSwitch(slot_id, producer_id, sequence, ...)
    # a receiving aiortc client must use bundlePolicy=MAX_BUNDLE (see tests/media/test_slot_e2e.py)

The router keeps every subscriber's slots filled (Router.update_slots, after any change below and
after producers come, go, pause or resume and the dominant speaker changes).

Server-side control::

    router.set_producer_muted(producer_id, True)        # stop forwarding (enforced mute)
    router.set_participant_audio_muted(participant_id, True)   # floor control
    router.set_pinned({chair_id, floor_holder_id})      # first in everybody's thumbnails and voices
    router.set_stage(floor_holder=p, spotlight=q)       # who goes on every stage
    router.set_own_pin(subscriber_id, participant_id | None)   # one subscriber's own stage
    router.set_last_n(subscriber_id, n | None)          # videos received, stage included (0: audio only)
    producer.request_keyframe()                         # PLI upstream, throttled
    await transport.close()

Events (``obj.on(name, callback)``, callbacks are synchronous)::

    Router:    producer_added(producer), producer_closed(producer), transport_closed(transport),
               dominant_speaker_changed(participant_id | None), keyframe_requested(producer), close()
    Transport: connectionstatechange(state), close()
    Producer:  pause(), resume(), mute(muted), keyframerequest(), close()
    SlotSet:   switch(SlotSwitch), close()        Slot: switch(SlotSwitch), close()

Statistics: ``transport.stats`` (malformed/unknown packets), ``producer.stats``,
``slot.stats`` (sent, switches, retransmitted, NACKs, PLIs, RTT, REMB).

The forwarding path: decrypted RTP is parsed once (RtpPacketView), NACK-tracked and stored in a
time-sized history on the producer, then each slot carrying it rewrites SSRC / sequence number /
timestamp / payload type / header extensions (and the VP8 picture ids across switches),
serializes, SRTP-protects and sends (SrtpEgress).
No decoder or encoder ever runs on the server. aiortc internals are only touched in
media/aiortc_seams.py.
"""

from __future__ import annotations

from .config import MediaConfig
from .errors import (
    InvalidStateError,
    MediaError,
    NegotiationError,
    NotFoundError,
    SeamError,
    UnsupportedError,
)
from .events import EventEmitter
from .producer import Producer, ProducerStats
from .router import Router
from .speaker import DominantSpeakerDetector
from .slot import Slot
from .slot_assignment import Wanted
from .slot_report import SlotStats, SlotSwitch
from .slot_set import SlotSet
from .transport import OfferedTrack, TransportStats, WebRtcTransport

__all__ = [
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
    "SlotStats",
    "SlotSwitch",
    "TransportStats",
    "UnsupportedError",
    "Wanted",
    "WebRtcTransport",
]
