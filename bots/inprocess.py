"""Wire bots straight to an in-process media.Router, without any signaling server.

For tests and benchmarks: the same offer/answer calls signaling would make, made directly.
"""

from __future__ import annotations

from media import Producer, Router, WebRtcTransport

from .publisher import Publisher
from .subscriber import Subscriber


async def connect_publisher(router: Router, participant_id: str, publisher: Publisher) -> dict[str, Producer]:
    """Publish the bot's tracks on a new sending transport; returns the producers by kind."""
    transport = router.create_transport(participant_id, "send")
    answer = await transport.accept_offer(await publisher.offer())
    await publisher.accept_answer(answer)
    return {track.kind: transport.produce(track.mid) for track in transport.offered_tracks()}


async def renegotiate(transport: WebRtcTransport, subscriber: Subscriber) -> None:
    """One server-driven offer/answer round on a receiving transport."""
    answer = await subscriber.on_offer(await transport.create_offer())
    await transport.accept_answer(answer)
    subscriber.update_consumers(
        [
            {
                "consumer_id": c.id,
                "producer_id": c.producer_id,
                "participant_id": c.producer.participant_id,
                "kind": c.kind,
                "mid": c.mid,
            }
            for c in transport.consumers.values()
            if c.mid is not None
        ]
    )


async def connect_subscriber(
    router: Router, participant_id: str, subscriber: Subscriber, producers: list[Producer]
) -> WebRtcTransport:
    """A receiving transport consuming ``producers``, negotiated with the bot's subscriber."""
    transport = router.create_transport(participant_id, "recv")
    for producer in producers:
        transport.consume(producer)
    await renegotiate(transport, subscriber)
    return transport
