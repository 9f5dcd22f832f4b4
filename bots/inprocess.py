"""Wire bots straight to an in-process media.Router, without any signaling server.

For tests and benchmarks: the same calls signaling makes, made directly. A subscriber gets its
slots (WebRtcTransport.create_slots), negotiated once; the router fills them and every switch
reaches the subscriber as a ``slot`` event (the dict the server would send), as signaling does
it: none before the answer, then what every slot carries by then, then each switch.
"""

from __future__ import annotations

from typing import Any

from media import Producer, Router, WebRtcTransport
from media.slot_report import SlotSwitch

from .publisher import Publisher
from .subscriber import Subscriber


async def connect_publisher(router: Router, participant_id: str, publisher: Publisher) -> dict[str, Producer]:
    """Publish the bot's tracks on a new sending transport; returns the producers by kind. The
    publisher stamps ``participant_id`` as its identity unless it was given one."""
    if publisher.identity is None:
        publisher.set_identity(participant_id)
    transport = router.create_transport(participant_id, "send")
    answer = await transport.accept_offer(await publisher.offer())
    await publisher.accept_answer(answer)
    return {track.kind: transport.produce(track.mid) for track in transport.offered_tracks()}


def slot_event(transport: WebRtcTransport, event: SlotSwitch) -> dict[str, Any]:
    """The ``slot`` server event for a switch (signaling/room.py's shape)."""
    return {"slot_id": event.slot_id, "mid": transport.slot_mid(event.slot_id), "producer_id": event.producer_id,
            "participant_id": event.participant_id, "sequence": event.sequence,
            "rtp_timestamp": event.rtp_timestamp, "rtp_sequence_number": event.rtp_sequence_number}


async def connect_subscriber(router: Router, participant_id: str, subscriber: Subscriber) -> WebRtcTransport:
    """A receiving transport with the subscriber's slots (``subscriber.videos`` / ``.audios``),
    negotiated once with it; the router fills the slots and the subscriber is told each switch."""
    transport = router.create_transport(participant_id, "recv")
    slot_set = transport.create_slots(videos=subscriber.videos, audios=subscriber.audios)
    answered = False

    def on_switch(event: SlotSwitch) -> None:
        if answered:
            subscriber.on_slot(slot_event(transport, event))

    slot_set.on("switch", on_switch)
    offer = await transport.create_offer()
    slots = [{"slot_id": slot.id, "kind": slot.kind, "mid": transport.slot_mid(slot.id), "stream_id": slot.stream_id,
              "track_id": slot.id} for slot in slot_set.slots.values()]
    await transport.accept_answer(await subscriber.accept_offer(offer, slots))
    answered = True
    for event in sorted(slot_set.last_switches.values(), key=lambda e: e.sequence):
        subscriber.on_slot(slot_event(transport, event))
    return transport
