"""The site's retransmission allowance (media/byte_bucket.py) and its use by a slot."""

from __future__ import annotations

import pytest
from slot_helpers import make_slot, make_source

from media.byte_bucket import ByteBucket


def test_a_bucket_gives_its_rate_and_burst_and_counts_what_it_refuses() -> None:
    bucket = ByteBucket(1000, burst_ms=500)  # 1000 bytes/s, 500 bytes saved at most
    assert bucket.take(400, 0 + bucket._last_ms)
    assert not bucket.take(200, bucket._last_ms) and bucket.refused == 200
    later = bucket._last_ms + 10_000
    assert bucket.take(500, later) and not bucket.take(1, later), "at most the burst is saved up"
    with pytest.raises(ValueError):
        ByteBucket(-1)


async def test_a_slot_resends_only_within_the_sites_allowance() -> None:
    src = make_source("a", ssrc=1000)
    sink = make_slot()
    sink.slot.switch_to(src.producer)
    for i in range(6):
        src.frame(key=i == 0, packets=2)
    sink.slot.rtx_bucket = ByteBucket(0, burst_ms=1)  # nothing left for retransmissions
    sink.slot.handle_nack([v.sequence_number for v in sink.media()[:3]])
    assert not sink.rtx() and sink.slot.stats.retransmits_over_budget == 3
