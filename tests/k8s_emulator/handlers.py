"""HTTP handlers for resource requests: create, update, patch, delete (reads in reads.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from k8s_emulator import patching, scale
from k8s_emulator.errors import (
    FieldError,
    bad_request,
    invalid_object,
    method_not_allowed,
    route_not_found,
    unsupported_media_type,
)
from k8s_emulator.operations import Operations
from k8s_emulator.reads import Reads
from k8s_emulator.web import (
    PATCH_TYPES,
    Settings,
    Target,
    json_response,
    options,
    read_body,
)

JSON = dict[str, Any]


class Handlers(Reads):
    def __init__(self, ops: Operations, settings: Settings) -> None:
        self.ops = ops
        self.store = ops.store
        self.settings = settings

    async def handle(self, request: Request, target: Target, verb: str) -> Response:
        rtype = target.rtype
        if target.subresource and not (
            (target.subresource == "status" and rtype.status)
            or (target.subresource == "scale" and rtype.scale is not None)
        ):
            raise route_not_found()
        if rtype.namespaced and not target.namespace and verb not in ("list", "watch"):
            if verb == "create":
                raise method_not_allowed(verb)
            raise route_not_found()
        if verb in ("get", "list", "watch"):
            return await self._read(request, target, verb)
        if verb == "create":
            if target.subresource:
                raise method_not_allowed("create")
            body = await read_body(request)
            result = self.ops.create(rtype, target.namespace, body or {}, options(request))
            return self._result(request, rtype, result)
        if verb == "update":
            body = await read_body(request)
            if target.subresource == "scale":
                obj = scale.update(
                    self.ops, rtype, target.namespace, target.name, body, options(request)
                )
                return json_response(obj)
            result = self.ops.update(
                rtype,
                target.namespace,
                target.name,
                body or {},
                target.subresource or None,
                options(request),
            )
            return self._result(request, rtype, result)
        if verb == "patch":
            return await self._patch(request, target)
        if verb == "delete":
            delete_options = await read_body(request) if await request.body() else {}
            result = self.ops.delete(
                rtype, target.namespace, target.name, delete_options or {}, options(request)
            )
            return self._result(request, rtype, result)
        if verb == "deletecollection":
            items = self._select(request, target)
            deleted = self.ops.delete_collection(rtype, items, options(request))
            return json_response(self._list_body(rtype, deleted, ""))
        raise method_not_allowed(verb)

    # -- patch ----------------------------------------------------------------

    async def _patch(self, request: Request, target: Target) -> Response:
        rtype = target.rtype
        content_type = patch_content_type(request.headers.get("content-type", ""))
        accepted = [t for t in PATCH_TYPES if not (rtype.custom and "strategic" in t)]
        if content_type not in accepted:
            raise unsupported_media_type(content_type, accepted)
        patch = await read_body(request)
        opts = options(request, patch=True)
        opts.patch_type, opts.patch_body = content_type, patch
        if content_type == "application/apply-patch+yaml":
            if not request.query_params.get("fieldManager"):
                error = FieldError(
                    "FieldValueRequired", "fieldManager", "", "is required for apply patch"
                )
                raise invalid_object("PatchOptions", "meta.k8s.io", "", [error])
            if not isinstance(patch, dict):
                raise bad_request(
                    "error decoding YAML: the applied configuration must be an object"
                )
            if (
                self.store.get(rtype.key, target.namespace, target.name) is None
                and not target.subresource
            ):
                patch.setdefault("metadata", {}).setdefault("name", target.name)
                return self._result(
                    request, rtype, self.ops.create(rtype, target.namespace, patch, opts)
                )
        if target.subresource == "scale":
            current = scale.get(self.ops, rtype, target.namespace, target.name)
            patched = _apply(content_type, current, patch)
            obj = scale.update(self.ops, rtype, target.namespace, target.name, patched, opts)
            return json_response(obj)
        current = self.ops.get(rtype, target.namespace, target.name)
        patched = _apply(content_type, current, patch)
        if not isinstance(patched, dict):
            raise bad_request("the patch must produce an object")
        result = self.ops.update(
            rtype, target.namespace, target.name, patched, target.subresource or None, opts
        )
        return self._result(request, rtype, result)


def patch_content_type(header: str) -> str:
    """As the API server reads it: cut at the first ';' (if not first), nothing trimmed."""
    index = header.find(";")
    return header[:index] if index > 0 else header


def _apply(content_type: str, current: JSON, patch: Any) -> Any:
    if content_type == "application/json-patch+json":
        return patching.json_patch(current, patch)
    if not isinstance(patch, dict):
        raise bad_request(
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    if content_type == "application/strategic-merge-patch+json":
        return patching.strategic_merge_patch(current, patch)
    return patching.merge_patch(current, patch)
