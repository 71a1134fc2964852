"""Deletion: finalizers and deletionTimestamp, namespaces and CRDs taking their content along."""

from __future__ import annotations

import copy
from typing import Any

from k8s_emulator import crds
from k8s_emulator.common import NAMESPACES, Options, Result
from k8s_emulator.conversion import now, present
from k8s_emulator.errors import ApiError, conflict, not_found, status_body
from k8s_emulator.resources import Registry, ResourceType
from k8s_emulator.store import Store

JSON = dict[str, Any]
RETURNS_DELETED_OBJECT = {("", "pods"), ("", "namespaces")}


class Deletion:
    store: Store
    registry: Registry

    # -- delete ---------------------------------------------------------------

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, options: JSON, opts: Options
    ) -> Result:
        existing = self.store.get(rtype.key, namespace, name)
        if existing is None:
            raise not_found(rtype.plural, rtype.group, name)
        self._preconditions(rtype, existing, options.get("preconditions") or {})
        meta = existing["metadata"]
        if meta.get("deletionTimestamp"):
            return Result(present(rtype, existing))
        if rtype.key == NAMESPACES and not opts.dry_run:
            return self._delete_namespace(rtype, existing)
        if meta.get("finalizers"):
            new = copy.deepcopy(existing)
            new["metadata"]["deletionTimestamp"] = now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if rtype.generation:
                new["metadata"]["generation"] = int(meta.get("generation", 1)) + 1
            if opts.dry_run:
                return Result(present(rtype, new))
            return Result(present(rtype, self.store.put(rtype.key, new, existing)))
        if not opts.dry_run:
            self._remove(rtype, existing)
        if rtype.custom or rtype.key in RETURNS_DELETED_OBJECT:
            return Result(present(rtype, existing))
        details: JSON = {"name": name, "kind": rtype.plural, "uid": meta["uid"]}
        if rtype.group:
            details = {"name": name, "group": rtype.group, "kind": rtype.plural, "uid": meta["uid"]}
        return Result(status_body(200, "", "", details))

    def _preconditions(self, rtype: ResourceType, obj: JSON, pre: JSON) -> None:
        meta = obj["metadata"]
        for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = pre.get(field_name)
            if wanted and wanted != meta.get(field_name):
                raise conflict(
                    rtype.plural,
                    rtype.group,
                    meta["name"],
                    f"Precondition failed: {label} in precondition: {wanted}, {label} in object "
                    f"meta: {meta.get(field_name)}",
                )

    def _remove(self, rtype: ResourceType, obj: JSON) -> None:
        self.store.remove(rtype.key, obj)
        if rtype.key == crds.KEY:
            for custom in self.registry.all():
                if custom.crd_name == obj["metadata"]["name"]:
                    for item in self.store.items(custom.key, None):
                        self.store.remove(custom.key, item)
            self.registry.unregister_crd(obj["metadata"]["name"])
        namespace = obj["metadata"].get("namespace")
        if namespace and self.store.namespace_is_empty(namespace):
            ns = self.store.get(NAMESPACES, "", namespace)
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self.store.remove(NAMESPACES, ns)

    def _delete_namespace(self, rtype: ResourceType, ns: JSON) -> Result:
        """No namespace controller: delete the contents now, then the namespace once empty."""
        name = ns["metadata"]["name"]
        terminating = copy.deepcopy(ns)
        terminating["metadata"]["deletionTimestamp"] = now()
        terminating["metadata"]["deletionGracePeriodSeconds"] = 0
        terminating["status"] = {"phase": "Terminating"}
        stored = self.store.put(NAMESPACES, terminating, ns)
        for key in self.store.resource_keys():
            types = [t for t in self.registry.by_key(key) if t.namespaced]
            for item in self.store.items(key, name) if types else []:
                self.delete(types[0], name, item["metadata"]["name"], {}, Options())
        if self.store.namespace_is_empty(name):
            current = self.store.get(NAMESPACES, "", name)
            if current is not None:
                self.store.remove(NAMESPACES, current)
        return Result(present(rtype, stored))

    def delete_collection(
        self, rtype: ResourceType, items: list[JSON], opts: Options
    ) -> list[JSON]:
        deleted = []
        for item in items:
            meta = item["metadata"]
            try:
                result = self.delete(rtype, meta.get("namespace", ""), meta["name"], {}, opts)
            except ApiError:
                continue
            deleted.append(result.obj if result.obj.get("kind") != "Status" else item)
        return deleted
