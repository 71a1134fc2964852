"""Structural-schema pruning, defaulting and validation of custom resources.

Follows the API server's order: unknown fields are pruned (and reported, for
``fieldValidation``), then defaults are applied, then the object is validated
with kube-openapi's rules and messages (converted to field errors the way
apiextensions-apiserver does).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from k8s_emulator.errors import FieldError, go_value

JSON = dict[str, Any]

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_ENVELOPE = ("apiVersion", "kind", "metadata")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune_metadata(obj: JSON, path: str, unknown: list[str]) -> None:
    """Unknown ObjectMeta fields go; empty ones too, as Go's omitempty drops them."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in list(meta):
            if key not in OBJECT_META_FIELDS:
                unknown.append(_child(_child(path, "metadata"), key))
                del meta[key]
            elif meta[key] in (None, "", {}, []):
                del meta[key]


def prune_and_default(obj: JSON, schema: JSON | None) -> list[str]:
    """Drop fields the schema does not know, apply defaults; return the dropped paths."""
    unknown: list[str] = []
    prune_metadata(obj, "", unknown)
    if schema is not None:
        _walk(obj, schema, "", unknown, envelope=True)
    return sorted(unknown)


def _walk(value: Any, schema: JSON, path: str, unknown: list[str], envelope: bool = False) -> None:
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _walk(item, items, f"{path}[{i}]", unknown)
        return
    if not isinstance(value, dict):
        return
    props: JSON = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = envelope or schema.get("x-kubernetes-embedded-resource") is True
    for key in list(value):
        if key in props or (embedded and key in _ENVELOPE):
            continue
        if isinstance(additional, dict) or additional is True or preserve:
            continue
        unknown.append(_child(path, key))
        del value[key]
    if embedded and not envelope:
        prune_metadata(value, path, unknown)
    for key, sub in props.items():
        if "default" in sub and (
            key not in value or (value[key] is None and not sub.get("nullable"))
        ):
            value[key] = copy.deepcopy(sub["default"])
    for key in list(value):
        if envelope and key in _ENVELOPE:
            continue
        if key in props:
            _walk(value[key], props[key], _child(path, key), unknown)
        elif isinstance(additional, dict):
            _walk(value[key], additional, _child(path, key), unknown)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


def _num(value: float) -> str:
    return go_value(float(value))


def validate(obj: JSON, schema: JSON | None) -> list[FieldError]:
    errors: list[FieldError] = []
    if schema is not None:
        _check(obj, schema, "", errors)
    return errors


def _invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def _check(value: Any, schema: JSON, path: str, errors: list[FieldError]) -> None:
    where = f"{path} in body"
    int_or_string = schema.get("x-kubernetes-int-or-string") is True
    wanted = "integer,string" if int_or_string else schema.get("type")
    actual = type_name(value)
    if value is None and schema.get("nullable"):
        return
    if wanted:
        allowed = wanted.split(",")
        if not (actual in allowed or (actual == "integer" and "number" in allowed)):
            detail = f'{where} must be of type {wanted}: "{actual}"'
            errors.append(FieldError("FieldValueTypeInvalid", path, actual, detail))
            return
    if "enum" in schema and value not in schema["enum"]:
        values = [v if isinstance(v, str) else json.dumps(v) for v in schema["enum"]]
        detail = "supported values: " + ", ".join(json.dumps(v) for v in values)
        errors.append(FieldError("FieldValueNotSupported", path, value, detail))
    if isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_number(value, schema, path, errors)
    elif isinstance(value, list):
        _check_array(value, schema, path, errors)
    elif isinstance(value, dict):
        _check_object(value, schema, path, errors)
    for sub in schema.get("allOf") or []:
        _check(value, sub, path, errors)
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if options:
            passing = sum(1 for sub in options if not _quiet(value, sub, path))
            if passing == 0 or (combinator == "oneOf" and passing > 1):
                verb = "any" if combinator == "anyOf" else "exactly one"
                errors.append(
                    _invalid(path, value, f'"{where}" must validate {verb} of the schemas')
                )
    if "not" in schema and not _quiet(value, schema["not"], path):
        errors.append(_invalid(path, value, f"{where} must not validate the schema (not)"))


def _quiet(value: Any, schema: JSON, path: str) -> list[FieldError]:
    found: list[FieldError] = []
    _check(value, schema, path, found)
    return found


def _check_string(value: str, schema: JSON, path: str, errors: list[FieldError]) -> None:
    where = f"{path} in body"
    length = len(value)
    if "maxLength" in schema and length > schema["maxLength"]:
        detail = f"may not be more than {schema['maxLength']} bytes"
        errors.append(FieldError("FieldValueTooLong", path, value, detail))
    if "minLength" in schema and length < schema["minLength"]:
        errors.append(
            _invalid(path, value, f"{where} should be at least {schema['minLength']} chars long")
        )
    pattern = schema.get("pattern")
    if pattern is not None and not _regex(pattern).search(value):
        errors.append(_invalid(path, value, f"{where} should match '{pattern}'"))


def _check_number(value: float, schema: JSON, path: str, errors: list[FieldError]) -> None:
    where = f"{path} in body"
    if "multipleOf" in schema and schema["multipleOf"] and value % schema["multipleOf"] != 0:
        errors.append(
            _invalid(path, value, f"{where} should be a multiple of {_num(schema['multipleOf'])}")
        )
    if "maximum" in schema:
        bound, exclusive = schema["maximum"], bool(schema.get("exclusiveMaximum"))
        if value > bound or (exclusive and value == bound):
            word = "less than" if exclusive else "less than or equal to"
            errors.append(_invalid(path, value, f"{where} should be {word} {_num(bound)}"))
    if "minimum" in schema:
        bound, exclusive = schema["minimum"], bool(schema.get("exclusiveMinimum"))
        if value < bound or (exclusive and value == bound):
            word = "greater than" if exclusive else "greater than or equal to"
            errors.append(_invalid(path, value, f"{where} should be {word} {_num(bound)}"))


def _check_array(value: list[Any], schema: JSON, path: str, errors: list[FieldError]) -> None:
    where = f"{path} in body"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        detail = f"must have at most {schema['maxItems']} items"
        errors.append(FieldError("FieldValueTooMany", path, len(value), detail))
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(
            _invalid(path, value, f"{where} should have at least {schema['minItems']} items")
        )
    if schema.get("uniqueItems"):
        seen = [json.dumps(v, sort_keys=True) for v in value]
        if len(set(seen)) != len(seen):
            errors.append(_invalid(path, value, f"{where} shouldn't contain duplicates"))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _check(item, items, f"{path}[{i}]", errors)


def _check_object(value: JSON, schema: JSON, path: str, errors: list[FieldError]) -> None:
    where = f"{path} in body"
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        detail = f"must have at most {schema['maxProperties']} items"
        errors.append(FieldError("FieldValueTooMany", path, len(value), detail))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        detail = f"{where} should have at least {schema['minProperties']} properties"
        errors.append(_invalid(path, value, detail))
    for key in schema.get("required") or []:
        if key not in value:
            errors.append(FieldError("FieldValueRequired", _child(path, key), "", ""))
    props: JSON = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if not path and key in _ENVELOPE:
            continue
        if key in props:
            _check(item, props[key], _child(path, key), errors)
        elif isinstance(additional, dict):
            _check(item, additional, _child(path, key), errors)
