"""meta.k8s.io/v1 Table output (what ``kubectl get`` asks for).

Custom resources get the CRD's additionalPrinterColumns after Name, rendered
the way apiextensions-apiserver's table convertor does (``date`` columns become
an age like ``5m``; ``string`` columns print any JSON value). Without printer
columns a CRD gets the default Age column. Built-ins get a few familiar columns.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]
Cell = Callable[[JSON], Any]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate operations. "
    "Clients may not set this value. It is represented in RFC3339 form and is in UTC."
)
_TOKEN = re.compile(
    r"\.([A-Za-z0-9_$-]+)|\[(\d+)\]|\[\?\(@\.([\w.-]+)\s*==\s*['\"]([^'\"]*)['\"]\)\]|\['([^']+)'\]"
)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        when = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.datetime.now(datetime.UTC) - when).total_seconds())


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The subset of JSONPath printer columns use: fields, [n], [?(@.k=="v")]."""
    path = path.strip().removeprefix("{").removesuffix("}").strip()
    if path.startswith("$"):
        path = path[1:]
    nodes = [obj]
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            return []
        position = match.end()
        field, index, filter_key, filter_value, quoted = match.groups()
        found: list[Any] = []
        for node in nodes:
            if (field or quoted) and isinstance(node, dict) and (field or quoted) in node:
                found.append(node[field or quoted])
            elif index is not None and isinstance(node, list) and int(index) < len(node):
                found.append(node[int(index)])
            elif filter_key and isinstance(node, list):
                found.extend(i for i in node if _filter_value(i, filter_key) == filter_value)
        nodes = found
    return nodes


def _filter_value(item: Any, key: str) -> Any:
    result = jsonpath(item, "." + key)
    return str(result[0]) if result else None


def _print(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def custom_cell(column: JSON) -> Cell:
    kind, path = column.get("type", "string"), column["jsonPath"]

    def cell(obj: JSON) -> Any:
        found = jsonpath(obj, path)
        if not found or found[0] is None:
            return None
        value = found[0]
        if kind == "string":
            return _print(value)
        if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
        if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind == "date" and isinstance(value, str):
            return age(value)
        return None

    return cell


def _field(path: str) -> Cell:
    return lambda obj: _print(v[0]) if (v := jsonpath(obj, path)) and v[0] is not None else "<none>"


def _ready(obj: JSON) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}"


def _pod_ready(obj: JSON) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    containers = (obj.get("spec") or {}).get("containers") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}"


def _created(obj: JSON) -> str:
    return age((obj.get("metadata") or {}).get("creationTimestamp"))


Column = tuple[str, str, Cell]
BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "namespaces"): [("Status", "string", _field(".status.phase"))],
    ("", "configmaps"): [
        ("Data", "string", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))
    ],
    ("", "secrets"): [
        ("Type", "string", _field(".type")),
        ("Data", "string", lambda o: len(o.get("data") or {})),
    ],
    ("", "pods"): [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _field(".status.phase")),
    ],
    ("apps", "statefulsets"): [("Ready", "string", _ready)],
    ("apps", "deployments"): [("Ready", "string", _ready)],
    ("coordination.k8s.io", "leases"): [("Holder", "string", _field(".spec.holderIdentity"))],
    ("", "events"): [
        ("Type", "string", _field(".type")),
        ("Reason", "string", _field(".reason")),
        (
            "Object",
            "string",
            lambda o: "{}/{}".format(
                str((o.get("involvedObject") or {}).get("kind", "")).lower(),
                (o.get("involvedObject") or {}).get("name", ""),
            ),
        ),
        ("Message", "string", _field(".message")),
    ],
}


CREATED_AT = {
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "clusterroles"),
}


def columns_for(rtype: ResourceType) -> list[tuple[JSON, Cell]]:
    columns: list[tuple[JSON, Cell]] = [
        (
            {
                "name": "Name",
                "type": "string",
                "format": "name",
                "description": NAME_DESCRIPTION,
                "priority": 0,
            },
            lambda o: (o.get("metadata") or {}).get("name", ""),
        )
    ]
    age_column = (
        {
            "name": "Age",
            "type": "date",
            "format": "",
            "description": AGE_DESCRIPTION,
            "priority": 0,
        },
        _created,
    )
    if rtype.custom:
        for column in rtype.columns or [
            {
                "name": "Age",
                "type": "date",
                "jsonPath": ".metadata.creationTimestamp",
                "description": AGE_DESCRIPTION,
            }
        ]:
            definition = {
                "name": column["name"],
                "type": column.get("type", "string"),
                "format": column.get("format", ""),
                "description": column.get("description")
                or f"Custom resource definition column (in JSONPath format): {column['jsonPath']}",
                "priority": column.get("priority", 0),
            }
            columns.append((definition, custom_cell(column)))
        return columns
    if rtype.key in CREATED_AT:
        created = {
            "name": "Created At",
            "type": "date",
            "format": "",
            "description": AGE_DESCRIPTION,
            "priority": 0,
        }
        columns.append((created, lambda o: (o.get("metadata") or {}).get("creationTimestamp")))
        return columns
    for name, kind, cell in BUILTIN_COLUMNS.get(rtype.key, []):
        columns.append(
            ({"name": name, "type": kind, "format": "", "description": "", "priority": 0}, cell)
        )
    columns.append(age_column)
    return columns


def partial_metadata(obj: JSON) -> JSON:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def table(
    rtype: ResourceType,
    items: list[JSON],
    resource_version: str,
    include_object: str = "Metadata",
    headers: bool = True,
    continue_token: str = "",
) -> JSON:
    columns = columns_for(rtype)
    rows = []
    for obj in items:
        row: JSON = {"cells": [cell(obj) for _, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    metadata: JSON = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    result: JSON = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}
    if headers:
        result["columnDefinitions"] = [definition for definition, _ in columns]
    result["rows"] = rows
    return result
