"""Fixtures of the chart tests (helpers in chartkit.py)."""

from __future__ import annotations

import pytest
from helm.chartkit import HELM, HelmChart


@pytest.fixture(scope="session")
def chart() -> HelmChart:
    if not HELM.exists():
        pytest.skip(f"{HELM} is missing: `make setup` extracts helm and kubectl")
    return HelmChart()
