"""EpochLog: mapping a NACKed slot sequence number back to the epoch (source, offsets) it was sent in."""

from __future__ import annotations

import gc

from slot_helpers import make_source

from media.slot_epochs import MAX_EPOCHS, EpochLog


def test_find_picks_the_newest_epoch_at_or_before_the_sequence_number_across_the_wrap() -> None:
    a = make_source("a", ssrc=1000).producer
    b = make_source("b", ssrc=2000).producer
    log = EpochLog()
    log.start(65530, 10, 20, 0, 0, a)
    log.start(4, 30, 40, 1, 2, b)  # the slot's numbers wrapped between the two epochs
    assert log.find(65535).source() is a and log.find(65535).seq_offset == 10
    assert log.find(3).source() is a, "65530..3 is the first epoch, across the wrap"
    found = log.find(4)
    assert found is not None and found.source() is b and (found.ts_offset, found.pid_offset, found.tl0_offset) == (40, 1, 2)
    assert log.find(900).source() is b
    assert log.find(65529) is None, "before every remembered epoch"


def test_only_the_last_epochs_are_kept_and_sources_are_held_weakly() -> None:
    log = EpochLog()
    keep = make_source("keep", ssrc=1).producer
    for i in range(MAX_EPOCHS + 4):
        log.start(100 * i, i, i, 0, 0, keep)
    assert len(log) == MAX_EPOCHS
    assert log.find(100 * 3) is None and log.find(100 * 4).seq_offset == 4
    gone = make_source("gone", ssrc=2).producer
    log.start(5000, 0, 0, 0, 0, gone)
    del gone
    gc.collect()
    found = log.find(5001)
    assert found is not None and found.source() is None, "the log does not keep a departed publisher alive"
