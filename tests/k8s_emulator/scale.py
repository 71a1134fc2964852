"""The /scale subresource (autoscaling/v1 Scale) of StatefulSets, Deployments and
custom resources whose CRD declares one."""

from __future__ import annotations

import copy
from typing import Any

from k8s_emulator.common import Options
from k8s_emulator.errors import STALE, RawValue, bad_request, conflict, invalid, invalid_object
from k8s_emulator.operations import Operations
from k8s_emulator.resources import ResourceType, Scale
from k8s_emulator.selectors import label_selector_from_object, selector_string

JSON = dict[str, Any]


def _read(obj: JSON, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _write(obj: JSON, path: str, value: Any) -> None:
    parts = path.split(".")
    node = obj
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _spec(rtype: ResourceType) -> Scale:
    assert rtype.scale is not None
    return rtype.scale


def get(ops: Operations, rtype: ResourceType, namespace: str, name: str) -> JSON:
    obj = ops.get(rtype, namespace, name)
    spec = _spec(rtype)
    meta = obj["metadata"]
    status: JSON = {"replicas": _read(obj, spec.status_replicas) or 0}
    if spec.selector:
        selector = _read(obj, spec.selector)
        if spec.selector_is_string:
            if selector:
                status["selector"] = selector
        else:
            status["selector"] = selector_string(label_selector_from_object(selector))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            key: meta[key]
            for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if key in meta
        },
        "spec": {"replicas": _read(obj, spec.spec_replicas) or 0},
        "status": status,
    }


def update(
    ops: Operations, rtype: ResourceType, namespace: str, name: str, body: Any, opts: Options
) -> JSON:
    if not isinstance(body, dict):
        raise bad_request("the body must be an autoscaling/v1 Scale")
    current = ops.get(rtype, namespace, name)
    version = (body.get("metadata") or {}).get("resourceVersion")
    if version and version != current["metadata"]["resourceVersion"]:
        raise conflict(rtype.plural, rtype.group, name, STALE)
    replicas = (body.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        error = invalid(
            "spec.replicas", RawValue(str(replicas)), "must be greater than or equal to 0"
        )
        raise invalid_object("Scale", "autoscaling", name, [error])
    new = copy.deepcopy(current)
    _write(new, _spec(rtype).spec_replicas, replicas)
    ops.update(rtype, namespace, name, new, None, Options(opts.dry_run, "Ignore", patch=True))
    return get(ops, rtype, namespace, name)
