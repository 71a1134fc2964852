"""wafleet: a fleet of linked WhatsApp accounts, standalone or on Kubernetes."""

from __future__ import annotations

__version__ = "0.1.0"
