"""Validation of the built-ins wafleet writes, with the API server's field errors.

Lease (ValidateLeaseSpec), Event (legacyValidateEvent for core v1; the strict
events.k8s.io/v1 rules on create), StatefulSet (ValidateStatefulSetSpec: the
selector, the template's labels, replicas, policies) and Pod (the containers:
name, image, ports, pull policy; restart and DNS policy). Paths are those of the
internal types, as the server reports them (an events.k8s.io Event's ``note``
is reported as ``message``).
"""

from __future__ import annotations

import re
from typing import Any

from k8s_emulator.errors import FieldError, RawValue, forbidden, invalid, required
from k8s_emulator.meta import LABEL_1123_MSG, SUBDOMAIN_MSG
from k8s_emulator.resources import ResourceType
from k8s_emulator.selectors import label_selector_from_object

JSON = dict[str, Any]
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def unsupported(path: str, value: Any, allowed: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(f'"{a}"' for a in allowed)
    return FieldError("FieldValueNotSupported", path, value, detail)


def validate(rtype: ResourceType, obj: JSON, old: JSON | None) -> list[FieldError]:
    """Field errors of a built-in object in storage form (core Event names for Events)."""
    check = {
        ("coordination.k8s.io", "leases"): _lease,
        ("", "pods"): _pod,
        ("apps", "statefulsets"): _statefulset,
    }.get(rtype.key)
    if check is not None:
        return check(obj)
    if rtype.key == ("", "events"):
        strict = rtype.group == "events.k8s.io" and old is None
        return _event(obj, strict)
    return []


# -- Lease --------------------------------------------------------------------


def _lease(obj: JSON) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errors.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errors.append(
            invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errors.append(
            forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return errors


# -- Event --------------------------------------------------------------------


def _event(obj: JSON, strict: bool) -> list[FieldError]:
    errors = _legacy_event(obj)
    if not strict:
        return errors
    series = obj.get("series")
    if series is not None:
        if int(series.get("count") or 0) < 2:
            errors.append(invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errors.append(required("series.lastObservedTime"))
    if not obj.get("eventTime"):
        errors.append(required("eventTime"))
    kind = obj.get("type") or ""
    if kind not in ("Normal", "Warning"):
        errors.append(invalid("type", "", f"has invalid value: {kind}"))
    for name in ("firstTimestamp", "lastTimestamp", "count"):
        if obj.get(name):
            errors.append(invalid(name, "", "needs to be unset"))
    source = obj.get("source") or {}
    if source.get("component") or source.get("host"):
        errors.append(invalid("source", "", "needs to be unset"))
    return errors


def _legacy_event(obj: JSON) -> list[FieldError]:
    errors: list[FieldError] = []
    namespace = obj["metadata"].get("namespace", "")
    involved = (obj.get("involvedObject") or {}).get("namespace", "")
    mismatch = invalid("involvedObject.namespace", involved, "does not match event.namespace")
    if not obj.get("eventTime"):
        if (not involved and namespace not in ("", "default")) or (
            involved and involved != namespace
        ):
            errors.append(mismatch)
        return errors
    if not involved and namespace not in ("default", "kube-system"):
        errors.append(mismatch)
    controller = obj.get("reportingComponent") or ""
    if not controller:
        errors.append(required("reportingController"))
    errors.extend(_qualified_name("reportingController", controller))
    for name, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
        value = obj.get(name) or ""
        if not value:
            errors.append(required(name))
        if len(value) > limit:
            errors.append(invalid(name, "", f"can have at most {limit} characters"))
    if len(obj.get("message") or "") > 1024:
        errors.append(invalid("message", "", "can have at most 1024 characters"))
    return errors


def _qualified_name(path: str, value: str) -> list[FieldError]:
    if not value:
        return []
    prefix, _, name = value.rpartition("/")
    errors = []
    if prefix and not _SUBDOMAIN.match(prefix):
        errors.append(invalid(path, value, "prefix part " + SUBDOMAIN_MSG))
    if not _QUALIFIED.match(name) or len(name) > 63:
        errors.append(
            invalid(
                path,
                value,
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                "or '123-abc', regex used for validation is "
                "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            )
        )
    return errors


# -- Pod and pod templates ----------------------------------------------------


def _pod(obj: JSON) -> list[FieldError]:
    return pod_spec(obj.get("spec") or {}, "spec", ["Always", "OnFailure", "Never"])


def pod_spec(spec: JSON, path: str, restart_policies: list[str]) -> list[FieldError]:
    errors = _containers(spec.get("containers") or [], f"{path}.containers")
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in restart_policies:
        errors.append(unsupported(f"{path}.restartPolicy", policy, restart_policies))
    dns = spec.get("dnsPolicy")
    allowed_dns = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
    if dns is not None and dns not in allowed_dns:
        errors.append(unsupported(f"{path}.dnsPolicy", dns, allowed_dns))
    return errors


def _containers(containers: list[JSON], path: str) -> list[FieldError]:
    if not containers:
        return [required(path)]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        here = f"{path}[{i}]"
        name = container.get("name") or ""
        if not name:
            errors.append(required(f"{here}.name"))
        elif len(name) > 63 or not _LABEL.match(name):
            detail = (
                LABEL_1123_MSG
                if _LABEL.match(name) is None
                else "must be no more than 63 characters"
            )
            errors.append(invalid(f"{here}.name", name, detail))
        if name and name in seen:
            errors.append(FieldError("FieldValueDuplicate", f"{here}.name", name))
        seen.add(name)
        if not container.get("image"):
            errors.append(required(f"{here}.image"))
        errors.extend(_container_fields(container, here))
    return errors


def _container_fields(container: JSON, here: str) -> list[FieldError]:
    errors: list[FieldError] = []
    pull = container.get("imagePullPolicy")
    allowed_pull = ["Always", "IfNotPresent", "Never"]
    if pull is not None and pull not in allowed_pull:
        errors.append(unsupported(f"{here}.imagePullPolicy", pull, allowed_pull))
    for j, port in enumerate(container.get("ports") or []):
        number = port.get("containerPort", 0)
        if not 1 <= number <= 65535:
            errors.append(
                invalid(
                    f"{here}.ports[{j}].containerPort",
                    number,
                    "must be between 1 and 65535, inclusive",
                )
            )
        protocol = port.get("protocol")
        if protocol is not None and protocol not in ("TCP", "UDP", "SCTP"):
            errors.append(
                unsupported(f"{here}.ports[{j}].protocol", protocol, ["SCTP", "TCP", "UDP"])
            )
    return errors


# -- StatefulSet --------------------------------------------------------------


def _statefulset(obj: JSON) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors: list[FieldError] = []
    policy = spec.get("podManagementPolicy")
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        errors.append(unsupported("spec.podManagementPolicy", policy, ["OrderedReady", "Parallel"]))
    strategy = (spec.get("updateStrategy") or {}).get("type")
    if strategy is not None and strategy not in ("RollingUpdate", "OnDelete"):
        errors.append(
            unsupported("spec.updateStrategy.type", strategy, ["OnDelete", "RollingUpdate"])
        )
    replicas = spec.get("replicas")
    if replicas is not None and replicas < 0:
        errors.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    errors.extend(_selector_and_template(spec))
    return errors


def _go_map(labels: JSON) -> str:
    """%#v of a map[string]string, as field.Error prints it."""
    body = ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items()))
    return "map[string]string{" + body + "}"


def _selector_and_template(spec: JSON) -> list[FieldError]:
    errors: list[FieldError] = []
    selector = spec.get("selector")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if selector is None:
        errors.append(required("spec.selector"))
    elif not (selector.get("matchLabels") or selector.get("matchExpressions")):
        errors.append(
            invalid("spec.selector", RawValue("null"), "empty selector is invalid for statefulset")
        )
    elif not all(r.matches(labels) for r in label_selector_from_object(selector)):
        errors.append(
            invalid(
                "spec.template.metadata.labels",
                RawValue(_go_map(labels)),
                "`selector` does not match template `labels`",
            )
        )
    errors.extend(pod_spec(template.get("spec") or {}, "spec.template.spec", ["Always"]))
    return errors
