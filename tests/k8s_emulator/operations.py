"""Create, update, delete with the API server's object semantics.

uid/creationTimestamp/resourceVersion/generation, optimistic concurrency,
status subresource separation, no-op updates that change nothing, finalizers
and deletionTimestamp, field pruning/defaulting/validation.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from k8s_emulator import builtins, crds, defaults, schema
from k8s_emulator.common import NAMESPACES, Options, Result
from k8s_emulator.conversion import now, present
from k8s_emulator.decoding import admit_body
from k8s_emulator.deletion import Deletion
from k8s_emulator.errors import (
    STALE,
    RawValue,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    forbidden_status,
    internal,
    invalid,
    invalid_object,
    not_found,
    qualified,
)
from k8s_emulator.meta import check_decodable, generate_name, validate_meta
from k8s_emulator.resources import ResourceType
from k8s_emulator.store import Store

JSON = dict[str, Any]
CREATE_ON_UPDATE = {("coordination.k8s.io", "leases"), ("", "events")}


def _body(obj: JSON, rtype: ResourceType) -> JSON:
    """What a generation bump looks at: everything but metadata (and status, if a subresource)."""
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if rtype.status else set())
    return {k: v for k, v in obj.items() if k not in skip}


def _same(a: JSON, b: JSON) -> bool:
    a, b = copy.deepcopy(a), copy.deepcopy(b)
    for obj in (a, b):
        obj.get("metadata", {}).pop("resourceVersion", None)
    return a == b


class Operations(Deletion):
    def __init__(self, store: Store) -> None:
        self.store = store
        self.registry = store.registry

    # -- reads ----------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JSON:
        found = self.store.get(rtype.key, namespace, name)
        if found is None:
            raise not_found(rtype.plural, rtype.group, name)
        return present(rtype, found)

    # -- admission helpers ----------------------------------------------------

    def _validate(self, rtype: ResourceType, obj: JSON, old: JSON | None) -> None:
        errors = validate_meta(obj, rtype)
        if rtype.custom:
            errors += schema.validate(obj, rtype.schema)
        else:
            errors += builtins.validate(rtype, obj, old)
        if rtype.key == crds.KEY:
            errors += crds.validate(obj)
        if old is not None and old["metadata"].get("deletionTimestamp"):
            added = [
                f
                for f in obj["metadata"].get("finalizers") or []
                if f not in (old["metadata"].get("finalizers") or [])
            ]
            if added:
                found = "[]string{" + ", ".join(f'"{f}"' for f in added) + "}"
                errors.append(
                    forbidden(
                        "metadata.finalizers",
                        f"no new finalizers can be added if the object is being deleted, "
                        f"found new finalizers {found}",
                    )
                )
        if errors:
            name = obj["metadata"].get("name", "")
            raise invalid_object(rtype.kind, rtype.group, name, errors)

    def _check_identity(self, rtype: ResourceType, namespace: str, body: JSON) -> JSON:
        check_decodable(body, rtype)
        for field_name, expected in (("apiVersion", rtype.api_version), ("kind", rtype.kind)):
            given = body.get(field_name)
            if given and given != expected:
                word = "API version" if field_name == "apiVersion" else "kind"
                raise bad_request(
                    f"the {word} in the data ({given}) does not match the expected {word} "
                    f"({expected})"
                )
        if body.get("metadata") is None:
            body["metadata"] = {}
        meta: JSON = body["metadata"]
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return meta

    # -- create ---------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str, body: JSON, opts: Options) -> Result:
        meta = self._check_identity(rtype, namespace, body)
        if rtype.namespaced:
            self._refuse_terminating(rtype, namespace, meta.get("name", ""))
        obj, warnings = admit_body(rtype, body, opts)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        if meta.get("resourceVersion"):
            raise internal("resourceVersion should not be set on objects to be created")
        for system in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(system, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rtype.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rtype.status:
            obj.pop("status", None)
            if rtype.initial_status is not None:
                obj["status"] = copy.deepcopy(rtype.initial_status)
        defaults.apply(rtype, obj, creating=True)
        if rtype.key == crds.KEY:
            crds.default(obj)
        self._validate(rtype, obj, None)
        if self.store.get(rtype.key, namespace, meta["name"]) is not None:
            raise already_exists(rtype.plural, rtype.group, meta["name"])
        if opts.dry_run:
            return Result(present(rtype, obj), 201, warnings)
        stored = self.store.put(rtype.key, obj, None)
        if rtype.key == crds.KEY:
            self.registry.register_crd(stored)
        return Result(present(rtype, stored), 201, warnings)

    def _refuse_terminating(self, rtype: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            raise forbidden_status(
                f'{qualified(rtype.plural, rtype.group)} "{name}" is forbidden: unable to '
                f"create new content in namespace {namespace} because it is being terminated",
                name,
                rtype.group,
                rtype.plural,
            )

    # -- update ---------------------------------------------------------------

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: JSON,
        subresource: str | None,
        opts: Options,
    ) -> Result:
        meta = self._check_identity(rtype, namespace, body)
        if meta.setdefault("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        existing = self.store.get(rtype.key, namespace, name)
        if existing is None:
            if rtype.key in CREATE_ON_UPDATE and subresource is None and not opts.patch:
                meta.pop("resourceVersion", None)
                return self.create(rtype, namespace, body, opts)
            raise not_found(rtype.plural, rtype.group, name)
        version = meta.get("resourceVersion")
        if version and version != existing["metadata"]["resourceVersion"]:
            raise conflict(rtype.plural, rtype.group, name, STALE)
        if not version and rtype.custom and not opts.patch:
            error = invalid(
                "metadata.resourceVersion", RawValue("0x0"), "must be specified for an update"
            )
            raise invalid_object(rtype.kind, rtype.group, name, [error])
        incoming, warnings = admit_body(rtype, body, opts)
        new = self._merge(rtype, existing, incoming, subresource)
        defaults.apply(rtype, new, creating=False)
        if rtype.key == crds.KEY:
            crds.default(new)
        self._validate(rtype, new, existing)
        if _same(new, existing):
            return Result(present(rtype, existing), 200, warnings)
        if existing["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # errEmptiedFinalizers: the update is not written; the object is deleted (one
            # DELETED event carrying its last stored state) and the request's object returned.
            if not opts.dry_run:
                self._remove(rtype, existing)
            return Result(present(rtype, new), 200, warnings)
        if opts.dry_run:
            return Result(present(rtype, new), 200, warnings)
        stored = self.store.put(rtype.key, new, existing)
        if rtype.key == crds.KEY:
            self.registry.register_crd(stored)
        return Result(present(rtype, stored), 200, warnings)

    def _merge(
        self, rtype: ResourceType, existing: JSON, incoming: JSON, subresource: str | None
    ) -> JSON:
        if subresource == "status":
            new = copy.deepcopy(existing)
            if "status" in incoming:
                new["status"] = incoming["status"]
            else:
                new.pop("status", None)
            return new
        new = incoming
        if rtype.status:
            if "status" in existing:
                new["status"] = copy.deepcopy(existing["status"])
            else:
                new.pop("status", None)
        meta, old = new["metadata"], existing["metadata"]
        for kept in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ):
            if kept in old:
                meta[kept] = old[kept]
            else:
                meta.pop(kept, None)
        if rtype.generation and _body(new, rtype) != _body(existing, rtype):
            meta["generation"] = int(old.get("generation", 1)) + 1
        return new
