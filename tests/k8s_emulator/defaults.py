"""The few defaults and normalisations of built-in types that clients notice."""

from __future__ import annotations

import base64
from typing import Any

from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]


def apply(rtype: ResourceType, obj: JSON, creating: bool) -> None:
    """Secret stringData folds into data; workloads get replicas 1 unless given."""
    if rtype.key == ("", "secrets"):
        obj.setdefault("type", "Opaque")
        strings = obj.pop("stringData", None) or {}
        if strings:
            data = obj.setdefault("data", {})
            for key, value in strings.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
    elif rtype.key in (("apps", "statefulsets"), ("apps", "deployments")):
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            if rtype.plural == "statefulsets":
                spec.setdefault("podManagementPolicy", "OrderedReady")
                spec.setdefault("revisionHistoryLimit", 10)
    elif rtype.key == ("", "namespaces") and creating:
        name = obj.get("metadata", {}).get("name", "")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj["spec"] = {"finalizers": ["kubernetes"]}
