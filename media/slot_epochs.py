"""A slot's epochs: which source, under which offsets, each run of the slot's sequence numbers came from.

Every time a slot starts a source (a switch, or a restart after a pause) a new *epoch* begins at the
next slot sequence number with new sequence / timestamp / PictureID / TL0PICIDX offsets. A NACK
names slot sequence numbers; :meth:`EpochLog.find` maps one back to the epoch it was sent in, so the
retransmission comes from the right producer's history, rewritten as first sent.

The source is held weakly: a slot outliving many publishers (a long session with people coming and
going) must not keep their producers, transports and peer connections alive.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .producer import Producer

#: How many epochs a slot remembers (older packets are beyond any NACK's reach anyway).
MAX_EPOCHS = 16


class Epoch(NamedTuple):
    start: int  # the first slot sequence number of the epoch
    seq_offset: int
    ts_offset: int
    pid_offset: int
    tl0_offset: int
    source: weakref.ref[Producer]


class EpochLog:
    """The last :data:`MAX_EPOCHS` epochs of one slot, oldest first."""

    __slots__ = ("_epochs",)

    def __init__(self) -> None:
        self._epochs: deque[Epoch] = deque(maxlen=MAX_EPOCHS)

    def __len__(self) -> int:
        return len(self._epochs)

    def start(self, start: int, seq_offset: int, ts_offset: int, pid_offset: int, tl0_offset: int,
              producer: Producer) -> None:
        self._epochs.append(Epoch(start, seq_offset, ts_offset, pid_offset, tl0_offset, weakref.ref(producer)))

    def find(self, out_seq: int) -> Epoch | None:
        """The epoch slot sequence number ``out_seq`` was sent in (the newest one starting at or
        before it); None when it is older than every remembered epoch."""
        for epoch in reversed(self._epochs):
            if (out_seq - epoch.start) & 0xFFFF < 0x8000:
                return epoch
        return None
