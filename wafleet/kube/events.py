"""Kubernetes Events about a resource, as the connectors and the operator's background
loops post them (kopf posts its handlers' own; outside a handler it has no queue)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from wafleet.core.models import iso

Obj = dict[str, Any]


def event_body(
    involved: Obj,
    *,
    warning: bool,
    reason: str,
    message: str,
    component: str,
    instance: str,
) -> Obj:
    """An ``events.k8s.io``-compatible core/v1 Event about ``involved`` (a resource as
    read: apiVersion, kind, metadata)."""
    meta = involved.get("metadata", {})
    now = iso(datetime.now(UTC))
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name')}.{uuid.uuid4().hex[:12]}"},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": "Warning" if warning else "Normal",
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component, "host": instance},
        "reportingComponent": component,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
