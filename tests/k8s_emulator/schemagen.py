"""Write ``builtin_schemas.json``: the typed shape of the built-ins the emulator decodes.

A development tool, not used at run time: ``PYTHONPATH=tests .venv/bin/python -m
k8s_emulator.schemagen``. It reads the Kubernetes v1.35 OpenAPI definitions that
the ``kubernetes-validate`` package (a dev dependency) ships and keeps, for every
struct reachable from the served built-in kinds, its JSON fields, their Go types
(``int32``/``int64`` from the OpenAPI format, Time/MicroTime/Quantity/IntOrString
from the referenced definition, named Go types from ``GO_NAMES``), the required
fields and the strategic-merge-patch keys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
VERSION = "v1.35.0"
OUT = Path(__file__).with_name("builtin_schemas.json")

ROOTS = {
    "v1/Namespace": "io.k8s.api.core.v1.Namespace",
    "v1/Event": "io.k8s.api.core.v1.Event",
    "v1/ConfigMap": "io.k8s.api.core.v1.ConfigMap",
    "v1/Secret": "io.k8s.api.core.v1.Secret",
    "v1/Service": "io.k8s.api.core.v1.Service",
    "v1/ServiceAccount": "io.k8s.api.core.v1.ServiceAccount",
    "v1/Pod": "io.k8s.api.core.v1.Pod",
    "v1/PersistentVolumeClaim": "io.k8s.api.core.v1.PersistentVolumeClaim",
    "apps/v1/StatefulSet": "io.k8s.api.apps.v1.StatefulSet",
    "apps/v1/Deployment": "io.k8s.api.apps.v1.Deployment",
    "coordination.k8s.io/v1/Lease": "io.k8s.api.coordination.v1.Lease",
    "events.k8s.io/v1/Event": "io.k8s.api.events.v1.Event",
    "rbac.authorization.k8s.io/v1/Role": "io.k8s.api.rbac.v1.Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "io.k8s.api.rbac.v1.RoleBinding",
    "rbac.authorization.k8s.io/v1/ClusterRole": "io.k8s.api.rbac.v1.ClusterRole",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "policy/v1/PodDisruptionBudget": "io.k8s.api.policy.v1.PodDisruptionBudget",
    "networking.k8s.io/v1/Ingress": "io.k8s.api.networking.v1.Ingress",
}

SPECIAL = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"t": "time", "go": "v1.Time"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": {"t": "microtime", "go": "v1.MicroTime"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"t": "quantity", "go": "resource.Quantity"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "t": "intorstring",
        "go": "intstr.IntOrString",
    },
    "io.k8s.apimachinery.pkg.runtime.RawExtension": {"t": "any", "go": "runtime.RawExtension"},
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": {"t": "any", "go": "v1.FieldsV1"},
}

# Named Go types the OpenAPI document does not name (struct.field -> Go type),
# so that a type error names the type the real decoder names.
GO_NAMES = {
    "ObjectMeta.uid": "types.UID",
    "OwnerReference.uid": "types.UID",
    "ObjectReference.uid": "types.UID",
    "ManagedFieldsEntry.operation": "v1.ManagedFieldsOperationType",
    "LabelSelectorRequirement.operator": "v1.LabelSelectorOperator",
    "LeaseSpec.strategy": "v1.CoordinatedLeaseStrategy",
    "StatefulSetSpec.podManagementPolicy": "v1.PodManagementPolicyType",
    "StatefulSetUpdateStrategy.type": "v1.StatefulSetUpdateStrategyType",
    "StatefulSetPersistentVolumeClaimRetentionPolicy.whenDeleted": (
        "v1.PersistentVolumeClaimRetentionPolicyType"
    ),
    "StatefulSetPersistentVolumeClaimRetentionPolicy.whenScaled": (
        "v1.PersistentVolumeClaimRetentionPolicyType"
    ),
    "DeploymentStrategy.type": "v1.DeploymentStrategyType",
    "PodSpec.restartPolicy": "v1.RestartPolicy",
    "PodSpec.dnsPolicy": "v1.DNSPolicy",
    "PodSpec.preemptionPolicy": "v1.PreemptionPolicy",
    "PodSpec.overhead": "v1.ResourceList",
    "PodStatus.phase": "v1.PodPhase",
    "PodStatus.qosClass": "v1.PodQOSClass",
    "PodCondition.type": "v1.PodConditionType",
    "PodCondition.status": "v1.ConditionStatus",
    "Container.imagePullPolicy": "v1.PullPolicy",
    "Container.terminationMessagePolicy": "v1.TerminationMessagePolicy",
    "Container.restartPolicy": "v1.ContainerRestartPolicy",
    "ContainerPort.protocol": "v1.Protocol",
    "ServicePort.protocol": "v1.Protocol",
    "ResourceRequirements.limits": "v1.ResourceList",
    "ResourceRequirements.requests": "v1.ResourceList",
    "VolumeResourceRequirements.limits": "v1.ResourceList",
    "VolumeResourceRequirements.requests": "v1.ResourceList",
    "HTTPGetAction.scheme": "v1.URIScheme",
    "Capabilities.add": "[]v1.Capability",
    "Capabilities.drop": "[]v1.Capability",
    "Toleration.operator": "v1.TolerationOperator",
    "Toleration.effect": "v1.TaintEffect",
    "NodeSelectorRequirement.operator": "v1.NodeSelectorOperator",
    "PersistentVolumeClaimSpec.accessModes": "[]v1.PersistentVolumeAccessMode",
    "PersistentVolumeClaimSpec.volumeMode": "v1.PersistentVolumeMode",
    "ServiceSpec.type": "v1.ServiceType",
    "ServiceSpec.sessionAffinity": "v1.ServiceAffinity",
    "ServiceSpec.externalTrafficPolicy": "v1.ServiceExternalTrafficPolicy",
    "NamespaceSpec.finalizers": "[]v1.FinalizerName",
    "NamespaceStatus.phase": "v1.NamespacePhase",
    "Secret.type": "v1.SecretType",
}


def _go_struct(name: str) -> str:
    parts = name.split(".")
    return f"{parts[-2]}.{parts[-1]}"


def _type_of(schema: JSON) -> str:
    kinds = schema.get("type")
    if isinstance(kinds, list):
        kinds = next((k for k in kinds if k != "null"), None)
    return str(kinds or "")


class Generator:
    def __init__(self, definitions: JSON) -> None:
        self.definitions = definitions
        self.structs: JSON = {}

    def node(self, schema: JSON, owner: str, field_name: str) -> JSON:
        named = GO_NAMES.get(f"{owner}.{field_name}") if field_name else None
        node = self._node(schema, owner)
        if named is not None:
            node["go"] = named
        for source, target in (
            ("x-kubernetes-patch-merge-key", "mergeKey"),
            ("x-kubernetes-patch-strategy", "strategy"),
        ):
            if source in schema:
                node[target] = schema[source]
        return node

    def _node(self, schema: JSON, owner: str) -> JSON:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name in SPECIAL:
                return dict(SPECIAL[name])
            self.struct(name)
            return {"t": "ref", "ref": name}
        kind = _type_of(schema)
        if kind == "array":
            return {"t": "list", "of": self.node(schema.get("items") or {}, owner, "")}
        if kind == "object":
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                return {"t": "map", "of": self.node(extra, owner, "")}
            return {"t": "any", "go": "map[string]interface {}"}
        if kind == "integer":
            return {"t": "int64" if schema.get("format") == "int64" else "int32"}
        if kind == "number":
            return {"t": "float64"}
        if kind == "boolean":
            return {"t": "bool"}
        if kind == "string":
            return {"t": "bytes" if schema.get("format") == "byte" else "string"}
        return {"t": "any", "go": "interface {}"}

    def struct(self, name: str) -> None:
        if name in self.structs:
            return
        schema = self.definitions[name]
        short = name.rsplit(".", 1)[-1]
        entry: JSON = {"go": _go_struct(name), "props": {}}
        self.structs[name] = entry
        for prop, sub in (schema.get("properties") or {}).items():
            entry["props"][prop] = self.node(sub, short, prop)
        if schema.get("required"):
            entry["required"] = list(schema["required"])


def main() -> None:
    import kubernetes_validate  # noqa: PLC0415 - a dev tool only

    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    definitions = json.loads((base / f"{VERSION}-local" / "_definitions.json").read_text())
    generator = Generator(definitions["$defs"])
    for name in ROOTS.values():
        generator.struct(name)
    document = {"version": VERSION, "roots": ROOTS, "structs": generator.structs}
    OUT.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({len(generator.structs)} structs)")


if __name__ == "__main__":
    main()
