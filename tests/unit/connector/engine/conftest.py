"""Fixtures of the neonize engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from unit.connector.engine.stubsim import StubSim


@pytest.fixture
def stub() -> Iterator[StubSim]:
    sim = StubSim()
    yield sim
    sim.close()
