"""From a request body to the stored form, failing the way the API server's decoders fail.

Built-ins go through ``typed`` (Go struct semantics), custom resources through
structural-schema pruning. Unknown fields follow ``fieldValidation``: dropped
(``Ignore``), dropped with a ``Warning`` header (``Warn``, the server's default
for every API version when the parameter is absent) or rejected (``Strict``).
The error's shape depends on the request:

- create/update: 400 ``Lease in version "v1" cannot be handled as a Lease: <error>``;
- JSON or merge patch: 422 `` "" is invalid: patch: Invalid value: "<patched
  object as JSON>": <error>`` (the patched object, keys sorted, as Go marshals it);
- strategic merge patch: the same with the patch printed as Go's ``%+v`` of a map;
- server-side apply: ``failed to create typed patch object (…): <path>: <error>``
  (500, as structured-merge-diff's errors reach the client), unknown fields
  included whatever ``fieldValidation`` says.
"""

from __future__ import annotations

import json
import math
from typing import Any

from k8s_emulator import schema, typed
from k8s_emulator.common import Options
from k8s_emulator.conversion import to_storage
from k8s_emulator.errors import ApiError, bad_request, go_quote
from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def go_json(value: Any) -> str:
    """encoding/json.Marshal of a map: keys sorted, compact, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_sprint(value: Any) -> str:
    """fmt's %+v of a value decoded into interface{} (maps print sorted)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def patch_invalid(value: str, message: str) -> ApiError:
    """errors.NewInvalid(schema.GroupKind{}, "", field.Invalid("patch", value, message))."""
    body = f"Invalid value: {go_quote(value)}: {message}"
    return ApiError(
        422,
        "Invalid",
        f' "" is invalid: patch: {body}',
        {"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]},
    )


def _cannot_handle(rtype: ResourceType, body: JSON, message: str) -> ApiError:
    version = str(body.get("apiVersion") or rtype.api_version).rsplit("/", 1)[-1]
    kind = body.get("kind") or rtype.kind
    return bad_request(
        f'{kind} in version "{version}" cannot be handled as a {rtype.kind}: {message}'
    )


def _apply_failed(rtype: ResourceType, body: JSON, errors: list[str]) -> ApiError:
    meta = body.get("metadata") or {}
    group, version = rtype.group, rtype.version
    gvk = f"{group}/{version}, Kind={rtype.kind}" if group else f"/{version}, Kind={rtype.kind}"
    name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    detail = errors[0] if len(errors) == 1 else "errors:\n  " + "\n  ".join(errors)
    return ApiError(500, "", f"failed to create typed patch object ({gvk}; {name}): {detail}")


def _failure(rtype: ResourceType, body: JSON, opts: Options, message: str) -> ApiError:
    if opts.patch_type == STRATEGIC_PATCH:
        return patch_invalid(go_sprint(opts.patch_body), message)
    if opts.patch_type in (JSON_PATCH, MERGE_PATCH):
        return patch_invalid(go_json(body), message)
    return _cannot_handle(rtype, body, message)


def _decode_builtin(rtype: ResourceType, root: str, body: JSON, opts: Options) -> typed.Decoded:
    if opts.patch_type == APPLY_PATCH:
        errors = typed.apply_errors(root, body)
        if errors:
            raise _apply_failed(rtype, body, errors)
    try:
        if opts.patch_type == STRATEGIC_PATCH:
            return typed.decode_unstructured(root, body)
        return typed.decode_json(root, body)
    except typed.DecodeError as error:
        if opts.patch_type == APPLY_PATCH:
            raise _apply_failed(rtype, body, [str(error)]) from None
        raise _failure(rtype, body, opts, str(error)) from None


def admit_body(rtype: ResourceType, body: JSON, opts: Options) -> tuple[JSON, list[str]]:
    """The object in storage form and the warnings to answer with."""
    root = typed.root_of(rtype)
    if root is not None:
        decoded = _decode_builtin(rtype, root, body, opts)
        obj = to_storage(rtype, decoded.obj)
        obj.setdefault("metadata", {})
        schema.prune_metadata(obj, "", [])
        unknown = sorted(decoded.unknown)
    else:
        obj = to_storage(rtype, body)
        unknown = schema.prune_and_default(obj, rtype.schema if rtype.custom else None)
        if unknown and opts.patch_type == APPLY_PATCH and rtype.custom:
            raise _apply_failed(
                rtype, body, [f".{path}: field not declared in schema" for path in unknown]
            )
    return obj, _field_validation(rtype, body, unknown, opts)


def _field_validation(
    rtype: ResourceType, body: JSON, unknown: list[str], opts: Options
) -> list[str]:
    if not unknown or opts.field_validation == "Ignore":
        return []
    texts = [f'unknown field "{path}"' for path in unknown]
    if opts.field_validation == "Strict":
        raise _failure(rtype, body, opts, "strict decoding error: " + ", ".join(texts))
    return texts
