"""Decode the protobuf bodies kubectl's typed clients send.

kubectl sends built-in objects it makes itself (``kubectl create namespace``,
``create configmap``, ``create secret``, ``create serviceaccount``) as
``application/vnd.kubernetes.protobuf`` whatever the server prefers, and does
not fall back to JSON on 415. This decodes those few kinds (the field numbers
of their generated.proto); anything else is answered with 415.
"""

from __future__ import annotations

import base64
from typing import Any

from k8s_emulator.errors import ApiError

JSON = dict[str, Any]
MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# A schema maps a field number to (JSON name, kind); kinds: str, bytes, int, bool,
# a nested schema, ("map", value kind), ("list", item kind).
Schema = dict[int, tuple[str, Any]]
TIME: Schema = {1: ("seconds", "int")}
OWNER: Schema = {
    1: ("kind", "str"),
    3: ("name", "str"),
    4: ("uid", "str"),
    5: ("apiVersion", "str"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
META: Schema = {
    1: ("name", "str"),
    2: ("generateName", "str"),
    3: ("namespace", "str"),
    5: ("uid", "str"),
    6: ("resourceVersion", "str"),
    11: ("labels", ("map", "str")),
    12: ("annotations", ("map", "str")),
    13: ("ownerReferences", ("list", OWNER)),
    14: ("finalizers", ("list", "str")),
}
REFERENCE: Schema = {
    1: ("kind", "str"),
    2: ("namespace", "str"),
    3: ("name", "str"),
    4: ("uid", "str"),
    5: ("apiVersion", "str"),
}
KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "Namespace"): {1: ("metadata", META), 2: ("spec", {1: ("finalizers", ("list", "str"))})},
    ("v1", "ConfigMap"): {
        1: ("metadata", META),
        2: ("data", ("map", "str")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "bool"),
    },
    ("v1", "Secret"): {
        1: ("metadata", META),
        2: ("data", ("map", "bytes")),
        3: ("type", "str"),
        4: ("stringData", ("map", "str")),
        5: ("immutable", "bool"),
    },
    ("v1", "ServiceAccount"): {
        1: ("metadata", META),
        2: ("secrets", ("list", REFERENCE)),
        3: ("imagePullSecrets", ("list", {1: ("name", "str")})),
        4: ("automountServiceAccountToken", "bool"),
    },
}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            out.append((number, int.from_bytes(data[pos : pos + size], "little")))
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _value(kind: Any, raw: int | bytes) -> Any:
    if kind == "str":
        return bytes(raw).decode() if isinstance(raw, bytes) else str(raw)
    if kind == "bytes":
        return base64.b64encode(raw if isinstance(raw, bytes) else b"").decode()
    if kind == "int":
        return int(raw) if isinstance(raw, int) else 0
    if kind == "bool":
        return bool(raw)
    return _message(kind, raw if isinstance(raw, bytes) else b"")


def _message(schema: Schema, data: bytes) -> JSON:
    out: JSON = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == "map":
            entry = dict(_fields(raw if isinstance(raw, bytes) else b""))
            key = _value("str", entry.get(1, b""))
            out.setdefault(name, {})[key] = _value(kind[1], entry.get(2, b""))
        elif isinstance(kind, tuple) and kind[0] == "list":
            out.setdefault(name, []).append(_value(kind[1], raw))
        else:
            out[name] = _value(kind, raw)
    return {k: v for k, v in out.items() if v not in ("", {}, [])}


def _unsupported(what: str) -> ApiError:
    kinds = ", ".join(kind for _, kind in KINDS)
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"application/json, application/yaml (the emulator reads protobuf only for {kinds}, "
        f"not {what}: use kubectl apply -f)",
    )


def decode(body: bytes) -> JSON:
    """A Kubernetes protobuf envelope (runtime.Unknown) as the object's JSON form."""
    if not body.startswith(MAGIC):
        raise _unsupported("an unknown protobuf body")
    envelope = dict(_fields(body[len(MAGIC) :]))
    header = envelope.get(1, b"")
    type_meta = dict(_fields(header if isinstance(header, bytes) else b""))
    api_version = _value("str", type_meta.get(1, b""))
    kind = _value("str", type_meta.get(2, b""))
    schema = KINDS.get((api_version, kind))
    raw = envelope.get(2, b"")
    if schema is None or not isinstance(raw, bytes):
        raise _unsupported(f"{kind} {api_version}")
    return {"apiVersion": api_version, "kind": kind, **_message(schema, raw)}
