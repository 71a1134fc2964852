"""Fixtures of the chart tests (helpers in chartkit.py)."""

from __future__ import annotations

import os

import pytest
from helm.chartkit import HELM, HelmChart


@pytest.fixture(scope="session")
def chart() -> HelmChart:
    if not HELM.exists():
        message = f"{HELM} is missing: `make setup` extracts helm and kubectl"
        if os.environ.get("CI") == "true":  # CI must not pass by skipping the chart tests
            pytest.fail(message)
        pytest.skip(message)
    return HelmChart()
