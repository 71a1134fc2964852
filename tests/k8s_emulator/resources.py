"""The resource types the emulator serves: built-ins and those registered by CRDs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CRD_GROUP = "apiextensions.k8s.io"


@dataclass(frozen=True)
class Scale:
    """Where a resource keeps what its /scale subresource shows (dotted paths)."""

    spec_replicas: str = "spec.replicas"
    status_replicas: str = "status.replicas"
    selector: str | None = "spec.selector"
    selector_is_string: bool = False


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: Scale | None = None
    generation: bool = False
    custom: bool = False
    schema: JSON | None = None
    columns: list[JSON] = field(default_factory=list)
    storage_group: str | None = None
    initial_status: JSON | None = None
    crd_name: str = ""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """The storage identity, shared by every version (and by both kinds of Event)."""
        return (self.group if self.storage_group is None else self.storage_group, self.plural)

    @property
    def group_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def discovery(self) -> list[JSON]:
        main: JSON = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(ALL_VERBS),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.categories:
            main["categories"] = list(self.categories)
        entries = [main]
        if self.status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.scale is not None:
            entries.append(
                {
                    "name": f"{self.plural}/scale",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        return entries


def _b(
    group: str, version: str, plural: str, kind: str, namespaced: bool = True, **kw: Any
) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, **kw)


def builtin_types() -> list[ResourceType]:
    return [
        _b(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            short_names=("ns",),
            status=True,
            initial_status={"phase": "Active"},
        ),
        _b("", "v1", "events", "Event", short_names=("ev",)),
        _b("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
        _b("", "v1", "secrets", "Secret"),
        _b("", "v1", "services", "Service", short_names=("svc",), categories=("all",), status=True),
        _b("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
        _b(
            "",
            "v1",
            "pods",
            "Pod",
            short_names=("po",),
            categories=("all",),
            status=True,
            initial_status={"phase": "Pending"},
        ),
        _b(
            "",
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            short_names=("pvc",),
            status=True,
        ),
        _b(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            short_names=("sts",),
            categories=("all",),
            status=True,
            scale=Scale(),
            generation=True,
        ),
        _b(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            short_names=("deploy",),
            categories=("all",),
            status=True,
            scale=Scale(),
            generation=True,
        ),
        _b("coordination.k8s.io", "v1", "leases", "Lease"),
        _b("events.k8s.io", "v1", "events", "Event", short_names=("ev",), storage_group=""),
        _b("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        _b(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            short_names=("pdb",),
            status=True,
            generation=True,
        ),
        _b(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            short_names=("ing",),
            status=True,
            generation=True,
        ),
        _b(
            CRD_GROUP,
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            short_names=("crd", "crds"),
            categories=("api-extensions",),
            status=True,
            generation=True,
        ),
    ]


_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes' version ordering: GA > beta > alpha, higher numbers first, others last."""
    match = _VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


class Registry:
    """Resource types by group/version/plural, and the API groups they make up."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rtype in builtin_types():
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def in_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types.values() if t.group == group and t.version == version]

    def versions(self, group: str) -> list[str]:
        found = {t.version for t in self._types.values() if t.group == group}
        return sorted(found, key=version_priority)

    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for rtype in self._types.values():
            if rtype.group:
                seen.setdefault(rtype.group)
        return list(seen)

    def preferred(self, group: str, plural: str) -> ResourceType | None:
        candidates = [t for t in self._types.values() if t.group == group and t.plural == plural]
        candidates.sort(key=lambda t: version_priority(t.version))
        return candidates[0] if candidates else None

    def by_key(self, key: tuple[str, str]) -> list[ResourceType]:
        return [t for t in self._types.values() if t.key == key]

    def register_crd(self, crd: JSON) -> None:
        self.unregister_crd(crd["metadata"]["name"])
        spec = crd["spec"]
        names = spec["names"]
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            subresources = version.get("subresources") or {}
            scale = subresources.get("scale")
            self.add(
                ResourceType(
                    group=spec["group"],
                    version=version["name"],
                    plural=names["plural"],
                    kind=names["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    short_names=tuple(names.get("shortNames") or ()),
                    categories=tuple(names.get("categories") or ()),
                    status="status" in subresources,
                    scale=None
                    if scale is None
                    else Scale(
                        scale["specReplicasPath"].lstrip("."),
                        scale["statusReplicasPath"].lstrip("."),
                        (scale.get("labelSelectorPath") or "").lstrip(".") or None,
                        selector_is_string=True,
                    ),
                    generation=True,
                    custom=True,
                    schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                    columns=list(version.get("additionalPrinterColumns") or []),
                    crd_name=crd["metadata"]["name"],
                )
            )

    def unregister_crd(self, crd_name: str) -> None:
        for key, rtype in list(self._types.items()):
            if rtype.crd_name == crd_name:
                del self._types[key]
