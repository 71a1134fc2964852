"""Optional RBAC: Roles and ClusterRoles through their bindings, as the API server's
RBAC authorizer evaluates them (only ``--rbac`` turns it on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8s_emulator.audit import Identity
from k8s_emulator.store import Store

JSON = dict[str, Any]
RBAC = "rbac.authorization.k8s.io"
PUBLIC_PATHS = ("/api", "/apis", "/version", "/openapi", "/healthz", "/livez", "/readyz")


@dataclass(frozen=True)
class Attributes:
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    path: str
    resource_request: bool


def _subject_matches(subject: JSON, identity: Identity, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return identity.user == f"system:serviceaccount:{namespace}:{name}"
    if kind == "User":
        return identity.user == name
    if kind == "Group":
        return name in identity.groups
    return False


def _rule_allows(rule: JSON, attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(
            u == "*" or u == attrs.path or (u.endswith("*") and attrs.path.startswith(u[:-1]))
            for u in urls
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    wanted = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    if not any(
        r in ("*", wanted) or (attrs.subresource and r == f"*/{attrs.subresource}")
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _role_rules(store: Store, ref: JSON, namespace: str) -> list[JSON]:
    if ref.get("kind") == "ClusterRole":
        role = store.get((RBAC, "clusterroles"), "", ref.get("name", ""))
    else:
        role = store.get((RBAC, "roles"), namespace, ref.get("name", ""))
    return list((role or {}).get("rules") or [])


def allowed(store: Store, identity: Identity, attrs: Attributes) -> bool:
    if "system:masters" in identity.groups:
        return True
    if (
        not attrs.resource_request
        and "system:authenticated" in identity.groups
        and any(attrs.path == p or attrs.path.startswith(p + "/") for p in PUBLIC_PATHS)
    ):
        return True
    bindings = [(b, "") for b in store.items((RBAC, "clusterrolebindings"), None)]
    if attrs.namespace:
        bindings += [
            (b, attrs.namespace) for b in store.items((RBAC, "rolebindings"), attrs.namespace)
        ]
    for binding, namespace in bindings:
        if not any(_subject_matches(s, identity, namespace) for s in binding.get("subjects") or []):
            continue
        if any(
            _rule_allows(r, attrs)
            for r in _role_rules(store, binding.get("roleRef") or {}, namespace)
        ):
            return True
    return False


def forbidden_message(identity: Identity, attrs: Attributes) -> str:
    if not attrs.resource_request:
        return f'forbidden: User "{identity.user}" cannot {attrs.verb} path "{attrs.path}"'
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'{subject} is forbidden: User "{identity.user}" cannot {attrs.verb} resource '
        f'"{resource}" in API group "{attrs.group}" {scope}'
    )
