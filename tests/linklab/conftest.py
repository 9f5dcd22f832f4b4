"""Fixtures for the link lab's self-tests: a running Lab, skipped (with the reason) where it cannot run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from linklab_probes import lab_unavailable

from linklab import Lab


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    async with Lab() as running:
        yield running
