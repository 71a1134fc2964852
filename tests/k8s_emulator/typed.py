"""Built-in objects decoded the way the API server decodes them into Go structs.

Three decoders over the same typed shape (``builtin_schemas.json``, made by
``schemagen``):

- ``json``: sigs.k8s.io/json (create, update, JSON and merge patches). The first
  type mismatch is kept and decoding goes on; an error from a type's own
  UnmarshalJSON (Time, MicroTime, Quantity, IntOrString) stops at once. Messages
  are encoding/json's: ``json: cannot unmarshal string into Go struct field
  LeaseSpec.spec.leaseDurationSeconds of type int32`` (the innermost struct, the
  JSON field path without list indices or map keys, the Go type).
- ``unstructured``: runtime.DefaultUnstructuredConverter (strategic merge patch):
  ``cannot restore int32 from string``, ``cannot convert int64 to string``.
- ``apply``: structured-merge-diff (server-side apply): ``.spec.x: expected
  numeric (int or float), got string``; unknown fields are always errors.

Unknown fields are dropped and reported with the strict decoder's paths
(``spec.template.spec.containers[0].foo``); null means absent; times come out
normalised (Time in whole seconds, MicroTime with six digits, both UTC).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k8s_emulator import gotime
from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]
SCHEMAS = Path(__file__).with_name("builtin_schemas.json")
QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
QUANTITY_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_SUFFIXES = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"}
_PRIMITIVE_GO = {
    "string": "string",
    "bool": "bool",
    "int32": "int32",
    "int64": "int64",
    "float64": "float64",
    "bytes": "[]uint8",
}
INT_RANGE = {"int32": 2**31, "int64": 2**63}


class DecodeError(Exception):
    """The decoder's error text (without the API server's prefix)."""


@dataclass
class Decoded:
    obj: JSON
    unknown: list[str] = field(default_factory=list)  # strict paths, e.g. spec.foo


@functools.cache
def _document() -> JSON:
    loaded: JSON = json.loads(SCHEMAS.read_text())
    return loaded


def root_of(rtype: ResourceType) -> str | None:
    """The struct a built-in kind decodes into (None for custom resources and CRDs)."""
    if rtype.custom:
        return None
    root: str | None = _document()["roots"].get(f"{rtype.api_version}/{rtype.kind}")
    return root


def struct(name: str) -> JSON:
    found: JSON = _document()["structs"][name]
    return found


def go_type(node: JSON) -> str:
    if "go" in node:
        return str(node["go"])
    kind = node["t"]
    if kind == "ref":
        return str(struct(node["ref"])["go"])
    if kind == "list":
        return "[]" + go_type(node["of"])
    if kind == "map":
        return "map[string]" + go_type(node["of"])
    return _PRIMITIVE_GO.get(kind, "interface {}")


def json_kind(value: Any) -> str:
    """encoding/json's word for a literal in an UnmarshalTypeError."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def number_text(value: float) -> str:
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return text
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return f"{value:.1f}"
    return repr(value)


class _Abort(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_quantity(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    match = QUANTITY.match(text.strip())
    if match is None:
        raise _Abort(QUANTITY_ERROR)
    suffix = match.group(2)
    if suffix not in _SUFFIXES and not re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        raise _Abort("unable to parse quantity's suffix")
    return text.strip()


def check_base64(value: str) -> None:
    try:
        base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError) as error:
        bad = next((i for i, c in enumerate(value) if not re.match(r"[A-Za-z0-9+/=\r\n]", c)), None)
        raise _Abort(
            f"illegal base64 data at input byte {bad if bad is not None else len(value)}"
        ) from error


class JsonDecoder:
    """sigs.k8s.io/json into the typed shape (see the module docstring)."""

    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.first_error: str | None = None

    def type_error(self, value: Any, node: JSON, owner: str, stack: list[str]) -> None:
        if self.first_error is None:
            what = json_kind(value)
            if what == "number" and node["t"] in INT_RANGE:
                what = f"number {number_text(value)}"
            where = f"Go struct field {owner}.{'.'.join(stack)}" if stack else "Go value"
            self.first_error = f"json: cannot unmarshal {what} into {where} of type {go_type(node)}"

    def abort_type(self, value: Any, go: str, owner: str, stack: list[str]) -> _Abort:
        where = f"Go struct field {owner}.{'.'.join(stack)}" if stack else "Go value"
        return _Abort(f"json: cannot unmarshal {json_kind(value)} into {where} of type {go}")

    def decode(self, value: Any, node: JSON, owner: str, stack: list[str], path: str) -> Any:
        kind = node["t"]
        if kind == "ref":
            return self.struct(value, node, owner, stack, path)
        if kind == "list":
            if not isinstance(value, list):
                return self.type_error(value, node, owner, stack)
            items = [
                self.decode(v, node["of"], owner, stack, f"{path}[{i}]")
                for i, v in enumerate(value)
            ]
            return [i for i in items if i is not None]
        if kind == "map":
            if not isinstance(value, dict):
                return self.type_error(value, node, owner, stack)
            out = {
                k: self.decode(v, node["of"], owner, stack, f"{path}.{k}") for k, v in value.items()
            }
            return {k: v for k, v in out.items() if v is not None}
        return self.scalar(value, node, owner, stack)

    def scalar(self, value: Any, node: JSON, owner: str, stack: list[str]) -> Any:
        kind = node["t"]
        if kind in ("time", "microtime"):
            if not isinstance(value, str):
                raise self.abort_type(value, "string", owner, stack)
            try:
                return gotime.normalize(value, kind == "microtime")
            except gotime.GoTimeError as error:
                raise _Abort(str(error)) from error
        if kind == "quantity":
            return check_quantity(value)
        if kind == "intorstring":
            if isinstance(value, str) or _is_int(value, "int32"):
                return value
            if isinstance(value, float) and not isinstance(value, bool):
                where = f"Go struct field {owner}.{'.'.join(stack)}" if stack else "Go value"
                raise _Abort(
                    f"json: cannot unmarshal number {number_text(value)} into {where} of type int32"
                )
            raise self.abort_type(value, "int32", owner, stack)
        if kind == "any" or _fits(value, kind):
            if kind == "bytes":
                check_base64(value)
            return value
        self.type_error(value, node, owner, stack)
        return None

    def struct(self, value: Any, node: JSON, owner: str, stack: list[str], path: str) -> Any:
        if not isinstance(value, dict):
            self.type_error(value, node, owner, stack)
            return None
        shape = struct(node["ref"])
        name = shape["go"].split(".", 1)[1]
        out: JSON = {}
        for key, item in value.items():
            sub = shape["props"].get(key)
            child = f"{path}.{key}" if path else key
            if sub is None:
                self.unknown.append(child)
                continue
            if item is None:
                continue
            decoded = self.decode(item, sub, name, [*stack, key], child)
            if decoded is not None:
                out[key] = decoded
        return out


def _is_int(value: Any, kind: str) -> bool:
    limit = INT_RANGE[kind]
    return isinstance(value, int) and not isinstance(value, bool) and -limit <= value < limit


def _fits(value: Any, kind: str) -> bool:
    if kind in ("string", "bytes"):
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind in INT_RANGE:
        return _is_int(value, kind)
    if kind == "float64":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return False


def decode_json(root: str, body: JSON) -> Decoded:
    decoder = JsonDecoder()
    try:
        out = decoder.struct(body, {"t": "ref", "ref": root}, "", [], "")
    except _Abort as error:
        raise DecodeError(error.message) from None
    if decoder.first_error is not None:
        raise DecodeError(decoder.first_error)
    return Decoded(out or {}, decoder.unknown)


def go_kind(value: Any) -> str:
    """reflect.Kind of a value in an unstructured map."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "slice"
    return "map"


class UnstructuredDecoder:
    """runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def decode(self, value: Any, node: JSON, path: str) -> Any:
        kind = node["t"]
        if kind == "ref":
            if not isinstance(value, dict):
                raise _Abort(f"cannot restore struct from: {go_kind(value)}")
            return self.struct(value, node["ref"], path)
        if kind == "list":
            if not isinstance(value, list):
                raise _Abort(f"cannot restore slice from {go_kind(value)}")
            return [self.decode(v, node["of"], f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise _Abort(f"cannot restore map from {go_kind(value)}")
            return {k: self.decode(v, node["of"], f"{path}.{k}") for k, v in value.items()}
        return self.scalar(value, node)

    def scalar(self, value: Any, node: JSON) -> Any:
        kind = node["t"]
        if kind in ("time", "microtime", "quantity", "intorstring"):
            decoder = JsonDecoder()
            try:
                return decoder.scalar(value, node, "", [])
            except _Abort as error:
                raise _Abort(error.message) from None
        if kind == "any" or _fits(value, kind):
            if kind == "bytes":
                check_base64(value)
            return value
        target = go_type(node) if kind not in _PRIMITIVE_GO else kind
        source = go_kind(value)
        if source == "float64" and kind in INT_RANGE:
            if float(value).is_integer():
                return int(value)
            raise _Abort(f"cannot convert float64 to {target}")
        if source == "int64" and kind in ("string", "bytes"):
            raise _Abort(f"cannot convert int64 to {target}")
        raise _Abort(f"cannot restore {target} from {source}")

    def struct(self, value: JSON, name: str, path: str) -> JSON:
        shape = struct(name)
        out: JSON = {}
        for key, item in value.items():
            sub = shape["props"].get(key)
            child = f"{path}.{key}" if path else key
            if sub is None:
                self.unknown.append(child)
            elif item is not None:
                out[key] = self.decode(item, sub, child)
        return out


def decode_unstructured(root: str, obj: JSON) -> Decoded:
    decoder = UnstructuredDecoder()
    try:
        out = decoder.struct(obj, root, "")
    except _Abort as error:
        raise DecodeError(error.message) from None
    return Decoded(out, decoder.unknown)


def _expected(kind: str) -> str:
    if kind in INT_RANGE or kind == "float64":
        return "numeric (int or float)"
    return {"bool": "boolean", "list": "list", "map": "map", "ref": "map"}.get(kind, "string")


def _smd_got(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "numeric"
    return {str: "string", list: "list", dict: "map"}.get(type(value), "string")


def apply_errors(root: str, obj: JSON) -> list[str]:
    """What structured-merge-diff reports for an applied configuration (empty when fine)."""
    errors: list[str] = []
    _apply_walk(obj, {"t": "ref", "ref": root}, "", errors)
    return errors


def _apply_walk(value: Any, node: JSON, path: str, errors: list[str]) -> None:
    kind = node["t"]
    if value is None or kind == "any":
        return
    if kind in ("time", "microtime", "quantity", "intorstring"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            errors.append(f"{path}: expected string, got {_smd_got(value)}")
        return
    container = {"ref": dict, "map": dict, "list": list}.get(kind)
    if container is not None and not isinstance(value, container):
        errors.append(f"{path}: expected {_expected(kind)}, got {_smd_got(value)}")
        return
    if kind == "ref":
        props = struct(node["ref"])["props"]
        for key, item in value.items():
            if key not in props:
                errors.append(f"{path}.{key}: field not declared in schema")
            else:
                _apply_walk(item, props[key], f"{path}.{key}", errors)
    elif kind == "list":
        for i, item in enumerate(value):
            _apply_walk(item, node["of"], f"{path}[{i}]", errors)
    elif kind == "map":
        for key, item in value.items():
            _apply_walk(item, node["of"], f"{path}.{key}", errors)
    elif not _fits(value, kind) and not (kind == "float64" and _fits(value, "int64")):
        errors.append(f"{path}: expected {_expected(kind)}, got {_smd_got(value)}")
