"""What a slot sent, by slot sequence number: the map a NACK from the subscriber is answered from.

A slot renumbers its sources' packets (a new *epoch* per source or restart, and inside an epoch
every temporal-layer packet it drops takes no number), so a slot sequence number maps back to a
source sequence number through no fixed offset. The slot records, for every packet it sends, the
source's sequence number, the epoch (source and timestamp / TL0PICIDX offsets) and the PictureID it
wrote, in a ring of :data:`SENT_MAP_SIZE` entries indexed by the slot sequence number. The ring
covers a producer's history (:class:`media.history.PacketHistory`, 1.5 s by default: ~400 packets
at 2.5 Mbit/s) more than twice; an entry overwritten since, or never written, is a miss. It is
small on purpose: a full ring is a tuple per entry, per slot of every subscriber (4096 entries grew
a long-lived subscriber's server memory by ~10 % in tests/test_churn.py).

The source is held weakly: a slot outliving many publishers must not keep their producers alive.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .producer import Producer

#: Entries in a slot's map (a power of two).
SENT_MAP_SIZE = 1024
SENT_MAP_MASK = SENT_MAP_SIZE - 1


class Epoch(NamedTuple):
    """One run of a slot's packets from one source under one timestamp / TL0PICIDX offset."""

    ts_offset: int
    tl0_offset: int
    source: weakref.ref[Producer]

    @classmethod
    def of(cls, producer: Producer, ts_offset: int, tl0_offset: int) -> Epoch:
        return cls(ts_offset, tl0_offset, weakref.ref(producer))


#: One packet the slot sent: (slot sequence number, source sequence number, epoch, output PictureID
#: or :data:`media.vp8_descriptor.NONE`). A plain tuple: one is built per forwarded packet.
Sent = tuple[int, int, "Epoch | None", int]


def new_sent_map() -> list[Sent | None]:
    """An empty map; the slot writes ``map[out_seq & SENT_MAP_MASK] = Sent(...)`` per packet."""
    return [None] * SENT_MAP_SIZE


def find_sent(sent_map: list[Sent | None], out_seq: int) -> Sent | None:
    """The packet sent as ``out_seq``, or None when it was never sent or is overwritten."""
    entry = sent_map[out_seq & SENT_MAP_MASK]
    if entry is None or entry[0] != out_seq:
        return None
    return entry
