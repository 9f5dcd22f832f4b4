"""Fixtures for the link lab's self-tests: a running Lab, skipped (with the reason) where it cannot run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from linklab import Lab
from linklab.tun import tun_available


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the link lab needs root (network namespaces, TUN devices)"
    if not tun_available():
        return "the link lab needs /dev/net/tun"
    return None


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    async with Lab() as running:
        yield running
