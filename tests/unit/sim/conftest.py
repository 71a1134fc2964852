"""Fixtures of the sim tests; the helpers themselves are in ``harness``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from unit.sim.harness import Harness, running

from wafleet.sim.service import SimConfig


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with running(SimConfig(qr_first_ttl=30, qr_ttl=30)) as harness:
        yield harness
