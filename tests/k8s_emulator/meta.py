"""ObjectMeta checks shared by every resource: names, labels, annotations."""

from __future__ import annotations

import re
import secrets
from typing import Any

from k8s_emulator.errors import FieldError, bad_request, invalid, required
from k8s_emulator.resources import ResourceType

JSON = dict[str, Any]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    r"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_1123_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_GENERATED = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    return prefix[:58] + "".join(secrets.choice(_GENERATED) for _ in range(5))


def _name_rule(rtype: ResourceType) -> tuple[re.Pattern[str], str, int]:
    if rtype.key == ("", "namespaces"):
        return _LABEL_1123, LABEL_1123_MSG, 63
    if rtype.key == ("", "services"):
        return _LABEL_1035, LABEL_1035_MSG, 63
    return _SUBDOMAIN, SUBDOMAIN_MSG, 253


def check_decodable(obj: Any, rtype: ResourceType) -> None:
    """What the typed JSON decoder rejects before validation (400 BadRequest)."""

    def fail(what: str, go_type: str, path: str) -> None:
        raise bad_request(
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: '
            f"json: cannot unmarshal {what} into Go struct field {path} of type {go_type}"
        )

    if not isinstance(obj, dict):
        raise bad_request(f"Object 'Kind' is missing in '{obj}'")
    meta = obj.get("metadata")
    if meta is None:
        return
    if not isinstance(meta, dict):
        fail(_json_type(meta), "v1.ObjectMeta", f"{rtype.kind}.metadata")
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            fail(_json_type(values), "map[string]string", f"ObjectMeta.metadata.{field}")
        for value in values.values():
            if not isinstance(value, str):
                fail(_json_type(value), "string", f"ObjectMeta.metadata.{field}")
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
    ):
        fail("array", "[]string", "ObjectMeta.metadata.finalizers")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _qualified_name(path: str, key: str) -> list[FieldError]:
    prefix, _, name = key.rpartition("/")
    errors: list[FieldError] = []
    if prefix and (len(prefix) > 253 or not _SUBDOMAIN.match(prefix)):
        errors.append(invalid(path, key, "prefix part " + SUBDOMAIN_MSG))
    if not name:
        errors.append(invalid(path, key, "name part must be non-empty"))
    elif len(name) > 63:
        errors.append(invalid(path, key, "name part must be no more than 63 characters"))
    elif not _NAME_PART.match(name):
        errors.append(invalid(path, key, NAME_PART_MSG))
    return errors


def validate_meta(obj: JSON, rtype: ResourceType) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    errors: list[FieldError] = []
    name = meta.get("name")
    if not name:
        errors.append(required("metadata.name", "name or generateName is required"))
    else:
        regex, message, limit = _name_rule(rtype)
        if len(name) > limit:
            errors.append(
                invalid("metadata.name", name, f"must be no more than {limit} characters")
            )
        if not regex.match(name):
            errors.append(invalid("metadata.name", name, message))
    for key, value in (meta.get("labels") or {}).items():
        errors.extend(_qualified_name("metadata.labels", key))
        if len(value) > 63:
            errors.append(invalid("metadata.labels", value, "must be no more than 63 characters"))
        if not _LABEL_VALUE.match(value):
            errors.append(invalid("metadata.labels", value, LABEL_VALUE_MSG))
    total = 0
    for key, value in (meta.get("annotations") or {}).items():
        errors.extend(_qualified_name("metadata.annotations", key.lower()))
        total += len(key) + len(value)
    if total > 256 * 1024:
        errors.append(
            FieldError(
                "FieldValueTooLong", "metadata.annotations", "", "may not be more than 262144 bytes"
            )
        )
    for i, finalizer in enumerate(meta.get("finalizers") or []):
        errors.extend(_qualified_name(f"metadata.finalizers[{i}]", finalizer))
    return errors
