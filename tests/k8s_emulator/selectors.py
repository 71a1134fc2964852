"""Label and field selectors, with the syntax of k8s.io/apimachinery/pkg/labels."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k8s_emulator.errors import bad_request

JSON = dict[str, Any]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")
_BINARY = re.compile(r"^([^\s!=<>(),]+)\s*(==|=|!=|<|>)\s*([^\s!=<>(),]*)$")
_SET = re.compile(r"^([^\s!=<>(),]+)\s+(in|notin)\s*\(([^()]*)\)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in, notin, exists, !, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if not present:
            return False
        try:
            number, bound = int(str(value)), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


def _check_key(key: str) -> None:
    if len(key) > 316 or not _KEY.match(key):
        raise bad_request(
            f"unable to parse requirement: Invalid value: {key!r}: name part must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(
            f"unable to parse requirement: values[0]: Invalid value: {value!r}: a valid label "
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text or not text.strip():
        return []
    requirements: list[Requirement] = []
    for part in _split(text):
        if not part:
            raise bad_request("unable to parse requirement: found '', expected: identifier")
        if match := _SET.match(part):
            key, op, raw = match.groups()
            values = tuple(v.strip() for v in raw.split(",")) if raw.strip() else ()
            if not values and op == "in":
                raise bad_request(
                    "unable to parse requirement: for 'in', 'notin' operators, "
                    + "values set can't be empty"
                )
            for value in values:
                _check_value(value)
            requirements.append(Requirement(key, op, values))
        elif match := _BINARY.match(part):
            key, op, value = match.groups()
            if op in ("<", ">"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                        "be an integer"
                    )
                requirements.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
            else:
                _check_value(value)
                requirements.append(Requirement(key, "notin" if op == "!=" else "in", (value,)))
        elif part.startswith("!"):
            requirements.append(Requirement(part[1:].strip(), "!"))
        elif re.fullmatch(r"[^\s!=<>(),]+", part):
            requirements.append(Requirement(part, "exists"))
        else:
            raise bad_request(f"unable to parse requirement: found {part!r}, expected: identifier")
        _check_key(requirements[-1].key)
    return requirements


def label_selector_from_object(selector: JSON | None) -> list[Requirement]:
    """A metav1.LabelSelector (matchLabels / matchExpressions) as requirements."""
    if not selector:
        return []
    out = [Requirement(k, "in", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        out.append(
            Requirement(
                expression["key"],
                ops[expression["operator"]],
                tuple(expression.get("values") or ()),
            )
        )
    return out


def selector_string(requirements: list[Requirement]) -> str:
    parts = []
    for r in requirements:
        if r.op == "exists":
            parts.append(r.key)
        elif r.op == "!":
            parts.append("!" + r.key)
        elif r.op == "in" and len(r.values) == 1:
            parts.append(f"{r.key}={r.values[0]}")
        elif r.op in ("gt", "lt"):
            parts.append(f"{r.key}{'>' if r.op == 'gt' else '<'}{r.values[0]}")
        else:
            parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
    return ",".join(parts)


def labels_match(requirements: list[Requirement], obj: JSON) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negate: bool

    def matches(self, obj: JSON) -> bool:
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        text = (
            ""
            if current is None
            else str(current).lower()
            if isinstance(current, bool)
            else str(current)
        )
        return (text == self.value) != self.negate


BUILTIN_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
    ),
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
}


def parse_field_selector(
    text: str | None, allowed: tuple[str, ...], custom: bool
) -> list[FieldRequirement]:
    if not text or not text.strip():
        return []
    out: list[FieldRequirement] = []
    for part in _split(text):
        match = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", part)
        if match is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = match.groups()
        if path not in ("metadata.name", "metadata.namespace") and path not in allowed:
            if custom:
                raise bad_request(
                    f'"{path}" is not a known field selector: only "metadata.name", '
                    '"metadata.namespace"'
                )
            raise bad_request(f"field label not supported: {path}")
        out.append(FieldRequirement(path, value, op == "!="))
    return out


def fields_match(requirements: list[FieldRequirement], obj: JSON) -> bool:
    return all(r.matches(obj) for r in requirements)


Matcher = Callable[[JSON], bool]


def matcher(labels: list[Requirement], fields: list[FieldRequirement]) -> Matcher:
    def match(obj: JSON) -> bool:
        return labels_match(labels, obj) and fields_match(fields, obj)

    return match
