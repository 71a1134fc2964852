"""Between the stored form of an object and the form a given API version shows.

Custom resources have no conversion webhook here (strategy None: only
apiVersion changes). ``events.k8s.io/v1`` Events share storage with core
``v1`` Events, with the field renames the API server applies.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]

_EVENT_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_EVENT_BACK = {v: k for k, v in _EVENT_RENAMES.items()}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_new_event(rtype: ResourceType) -> bool:
    return rtype.group == "events.k8s.io"


def to_storage(rtype: ResourceType, obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    if _is_new_event(rtype):
        out = {_EVENT_RENAMES.get(k, k): v for k, v in out.items()}
        out["apiVersion"] = "v1"
    else:
        out["apiVersion"] = rtype.api_version
    out["kind"] = rtype.kind
    return out


def present(rtype: ResourceType, obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    if _is_new_event(rtype):
        out = {_EVENT_BACK.get(k, k): v for k, v in out.items()}
    out["apiVersion"] = rtype.api_version
    out["kind"] = rtype.kind
    return {"apiVersion": out.pop("apiVersion"), "kind": out.pop("kind"), **out}
