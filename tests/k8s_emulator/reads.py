"""Reads: get, list (selectors, limit/continue, Table output) and watch."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from k8s_emulator import listing, scale, tables, watch
from k8s_emulator.common import Result
from k8s_emulator.conversion import present
from k8s_emulator.errors import ApiError
from k8s_emulator.operations import Operations
from k8s_emulator.resources import ResourceType
from k8s_emulator.selectors import (
    BUILTIN_FIELDS,
    matcher,
    parse_field_selector,
    parse_label_selector,
)
from k8s_emulator.store import Store
from k8s_emulator.web import TRUE, Settings, Target, accepts, json_response

JSON = dict[str, Any]


class Reads:
    ops: Operations
    store: Store
    settings: Settings

    def _result(self, request: Request, rtype: ResourceType, result: Result) -> Response:
        obj = result.obj
        if accepts(request, "Table") and obj.get("kind") != "Status":
            include = request.query_params.get("includeObject", "Metadata")
            obj = tables.table(rtype, [obj], obj["metadata"].get("resourceVersion", ""), include)
        return json_response(obj, result.code, result.warnings)

    # -- reads ----------------------------------------------------------------

    def _select(self, request: Request, target: Target) -> list[JSON]:
        match = self._matcher(request, target.rtype)
        namespace = target.namespace or None
        items = [present(target.rtype, o) for o in self.store.items(target.rtype.key, namespace)]
        return [o for o in items if match(o)]

    def _matcher(self, request: Request, rtype: ResourceType) -> Any:
        labels = parse_label_selector(request.query_params.get("labelSelector"))
        allowed = BUILTIN_FIELDS.get(rtype.key, ())
        fields = parse_field_selector(
            request.query_params.get("fieldSelector"), allowed, rtype.custom
        )
        return matcher(labels, fields)

    def _list_body(
        self,
        rtype: ResourceType,
        items: list[JSON],
        token: str,
        remaining: int = 0,
        rv: int | None = None,
    ) -> JSON:
        if not rtype.custom:
            items = [{k: v for k, v in i.items() if k not in ("apiVersion", "kind")} for i in items]
        metadata: JSON = {"resourceVersion": str(self.store.rv if rv is None else rv)}
        if token:
            metadata["continue"] = token
            metadata["remainingItemCount"] = remaining
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.api_version,
            "metadata": metadata,
            "items": items,
        }

    async def _read(self, request: Request, target: Target, verb: str) -> Response:
        rtype = target.rtype
        if verb == "get":
            if target.subresource == "scale":
                return json_response(scale.get(self.ops, rtype, target.namespace, target.name))
            obj = self.ops.get(rtype, target.namespace, target.name)
            return self._result(request, rtype, Result(obj))
        if verb == "watch":
            return await self._watch(request, target)
        snap = await listing.snapshot(
            self.store, rtype, target.namespace or None, request.query_params
        )
        match = self._matcher(request, rtype)
        items = [present(rtype, o) for o in snap.items]
        items = [o for o in items if match(o)]
        if snap.after is not None:
            items = [i for i in items if _position(i) > snap.after]
        token, remaining = "", 0
        limit = int(request.query_params.get("limit") or 0)
        if limit and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            token = listing.encode_token(snap.rv, _position(items[-1]))
        if accepts(request, "Table"):
            include = request.query_params.get("includeObject", "Metadata")
            return json_response(
                tables.table(rtype, items, str(snap.rv), include, continue_token=token)
            )
        if accepts(request, "PartialObjectMetadataList"):
            body = {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": str(snap.rv)},
                "items": [tables.partial_metadata(i) for i in items],
            }
            return json_response(body)
        return json_response(self._list_body(rtype, items, token, remaining, snap.rv))

    async def _watch(self, request: Request, target: Target) -> Response:
        rtype, params = target.rtype, request.query_params
        match = self._matcher(request, rtype)
        render = self._renderer(request, rtype)
        watcher = watch.Watcher(rtype, target.namespace or None, match, render)
        since = params.get("resourceVersion") or ""
        initial = params.get("sendInitialEvents") in TRUE
        plan = watch.Plan(
            timeout=float(params.get("timeoutSeconds") or self.settings.default_watch_timeout),
            bookmarks=params.get("allowWatchBookmarks") in TRUE,
            bookmark_interval=self.settings.bookmark_interval,
            fault=getattr(request.state, "watch_fault", None),
        )
        if since in ("", "0") or initial:
            for obj in self.store.items(rtype.key, target.namespace or None):
                if watcher.passes(obj):
                    watcher.send("ADDED", obj)
            if initial and plan.bookmarks:
                watcher.queue.put_nowait(watch.bookmark(rtype, self.store.rv, initial_end=True))
            self.store.subscribe(watcher, None)
        else:
            resume = listing.parse_rv(since)
            try:
                await listing.wait_fresh(self.store, resume)
                self.store.subscribe(watcher, resume)
            except ApiError as error:
                # past authorization and a parsable resourceVersion, errors are ERROR events
                line = watch.encode("ERROR", error.status())
                return Response(line, media_type="application/json")
        return StreamingResponse(
            watch.stream(self.store, watcher, plan), media_type="application/json"
        )

    def _renderer(self, request: Request, rtype: ResourceType) -> watch.Render:
        if not accepts(request, "Table"):
            return lambda obj: obj
        include = request.query_params.get("includeObject", "Metadata")
        first = [True]

        def render(obj: JSON) -> JSON:
            headers, first[0] = first[0], False
            rv = obj["metadata"].get("resourceVersion", "")
            return tables.table(rtype, [obj], rv, include, headers=headers)

        return render


def _position(obj: JSON) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])
