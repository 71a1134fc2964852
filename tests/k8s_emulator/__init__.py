"""A Kubernetes API server emulator for wafleet's tests.

Run it with ``python -m k8s_emulator --port P`` (from the repository root with
``PYTHONPATH=tests``), or start it from a test with ``support.k8s``.
It speaks the real API over plain HTTP so that the ``kubernetes`` client, kopf
and kubectl work unchanged; see ``README.md`` in this folder for what is and is
not emulated.
"""

from __future__ import annotations

from k8s_emulator.app import create_app
from k8s_emulator.store import Store

__all__ = ["Store", "create_app"]
