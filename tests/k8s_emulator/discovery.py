"""Discovery documents and the minimal OpenAPI that kubectl reads.

kubectl 1.35 asks /api and /apis for aggregated discovery first and falls back
to these legacy documents when the answer is plain ``application/json``.
``kubectl apply`` (validation ``strict`` by default) downloads /openapi/v2 as
protobuf and parses it eagerly: an empty but valid document makes its
client-side validation a no-op. It then looks in /openapi/v3 for a PATCH
operation of the object's kind taking ``fieldValidation``: found, kubectl
sends ``fieldValidation=Strict`` and the server validates. The PATCH request
bodies deliberately do not list strategic merge patch, so kubectl computes
merge patches for custom resources and strategic ones for built-ins from its
compiled-in types, as it does against a real cluster.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from k8s_emulator.resources import Registry, ResourceType

JSON = dict[str, Any]
KUBE_VERSION = {
    "major": "1",
    "minor": "35",
    "emulationMajor": "1",
    "emulationMinor": "35",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "34",
    "gitVersion": "v1.35.0-wafleet-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-12-17T00:00:00Z",
    "goVersion": "go1.25.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions() -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def _group(registry: Registry, name: str) -> JSON:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in registry.versions(name)]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list(registry: Registry) -> JSON:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(registry, g) for g in registry.groups()],
    }


def api_group(registry: Registry, name: str) -> JSON | None:
    if name not in registry.groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(registry, name)}


def resource_list(registry: Registry, group: str, version: str) -> JSON | None:
    types = registry.in_version(group, version)
    if not types:
        return None
    resources: list[JSON] = []
    for rtype in sorted(types, key=lambda t: t.plural):
        resources.extend(rtype.discovery())
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# -- OpenAPI ------------------------------------------------------------------


def _pb_string(field: int, text: str) -> bytes:
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


def openapi_v2_protobuf() -> bytes:
    """A gnostic openapi_v2.Document with only ``swagger`` and ``info`` set."""
    info = _pb_string(1, "Kubernetes") + _pb_string(2, KUBE_VERSION["gitVersion"])
    return _pb_string(1, "2.0") + bytes([2 << 3 | 2, len(info)]) + info


def openapi_v2_json() -> JSON:
    info = {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]}
    return {"swagger": "2.0", "info": info, "paths": {}, "definitions": {}}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root(registry: Registry) -> JSON:
    paths: JSON = {}
    pairs = sorted({(t.group, t.version) for t in registry.all()})
    for group, version in pairs:
        doc = json.dumps(openapi_v3_group_version(registry, group, version), sort_keys=True)
        digest = hashlib.sha512(doc.encode()).hexdigest()[:128].upper()
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


_PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation", "force")
]
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def _operations(rtype: ResourceType, action_prefix: str = "") -> JSON:
    gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
    body = {"$ref": f"#/components/schemas/{_schema_name(rtype)}"}
    response = {"200": {"description": "OK", "content": {"application/json": {"schema": body}}}}

    def op(action: str, request: list[str] | None) -> JSON:
        operation: JSON = {
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": _PARAMETERS,
            "responses": response,
        }
        if request:
            operation["requestBody"] = {"content": {t: {"schema": body} for t in request}}
        return operation

    return {
        "get": op("get", None),
        "put": op("put", ["application/json"]),
        "patch": op("patch", list(_PATCH_TYPES)),
        "delete": op("delete", None),
    }


def _schema_name(rtype: ResourceType) -> str:
    group = ".".join(reversed(rtype.group.split("."))) if rtype.group else "io.k8s.api.core"
    return f"{group}.{rtype.version}.{rtype.kind}"


def openapi_v3_group_version(registry: Registry, group: str, version: str) -> JSON:
    paths: JSON = {}
    schemas: JSON = {}
    prefix = "/" + _gv_path(group, version)
    for rtype in registry.in_version(group, version):
        scope = "/namespaces/{namespace}" if rtype.namespaced else ""
        item = f"{prefix}{scope}/{rtype.plural}/{{name}}"
        paths[item] = _operations(rtype)
        paths[f"{prefix}{scope}/{rtype.plural}"] = {
            "post": {
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": _operations(rtype)["get"][
                    "x-kubernetes-group-version-kind"
                ],
                "parameters": _PARAMETERS,
                "responses": {"201": {"description": "Created"}},
            }
        }
        schema: JSON = dict(rtype.schema or {"type": "object"})
        schema["x-kubernetes-group-version-kind"] = [
            {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        ]
        schemas[_schema_name(rtype)] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
