"""A small async Kubernetes API client (httpx): what the connector and the API need.

kopf drives the operator; the connector and the API only get, list, watch,
create, patch and delete a few resources, so they use this instead of the
thread-bound official client.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from wafleet.kube.config import KubeConnection

Obj = dict[str, Any]
PatchKind = Literal["merge", "json"]
_PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    """409: a stale resourceVersion, or the object already exists (reason AlreadyExists)."""


class Gone(KubeError):
    """410: the resourceVersion a watch resumes from is too old; list again."""


_ERRORS: dict[int, type[KubeError]] = {404: NotFound, 409: Conflict, 410: Gone}


def _raise_for(status: int, body: Any) -> None:
    reason = body.get("reason", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else str(body)[:500]
    raise _ERRORS.get(status, KubeError)(status, reason, message)


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{name}"
        if sub is not None:
            base += f"/{sub}"
        return base


ACCOUNTS = Resource("wafleet.io", "v1alpha1", "whatsappaccounts")
LEASES = Resource("coordination.k8s.io", "v1", "leases")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
EVENTS = Resource("", "v1", "events")


class KubeClient:
    def __init__(self, connection: KubeConnection, timeout: float = 30.0) -> None:
        self._connection = connection
        verify: ssl.SSLContext | bool = connection.verify
        if connection.verify and connection.ca_file:
            verify = ssl.create_default_context(cafile=connection.ca_file)
        cert = (
            (connection.cert_file, connection.key_file)
            if connection.cert_file and connection.key_file
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=connection.host,
            verify=verify,
            cert=cert,
            timeout=httpx.Timeout(timeout, read=None),
        )

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token = self._connection.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        response = await self._http.request(
            method,
            path,
            params=params,
            content=None if body is None else json.dumps(body),
            headers=self._headers(content_type if body is not None else None),
        )
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            _raise_for(response.status_code, data)
        result: Obj = data
        return result

    async def get(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return await self._call("GET", res.path(namespace, name))

    async def list(self, res: Resource, namespace: str | None, label_selector: str = "") -> Obj:
        params = {"labelSelector": label_selector} if label_selector else None
        return await self._call("GET", res.path(namespace), params=params)

    async def create(self, res: Resource, namespace: str | None, body: Obj) -> Obj:
        return await self._call("POST", res.path(namespace), body=body)

    async def replace(self, res: Resource, namespace: str | None, name: str, body: Obj) -> Obj:
        return await self._call("PUT", res.path(namespace, name), body=body)

    async def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        kind: PatchKind = "merge",
        subresource: str | None = None,
    ) -> Obj:
        return await self._call(
            "PATCH",
            res.path(namespace, name, subresource),
            body=patch,
            content_type=_PATCH_TYPES[kind],
        )

    async def delete(self, res: Resource, namespace: str | None, name: str) -> Obj:
        return await self._call("DELETE", res.path(namespace, name))

    async def watch(
        self,
        res: Resource,
        namespace: str | None,
        *,
        resource_version: str,
        label_selector: str = "",
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) until the server ends the watch; raise Gone when too old."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        if label_selector:
            params["labelSelector"] = label_selector
        async with self._http.stream(
            "GET", res.path(namespace), params=params, headers=self._headers()
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                _raise_for(response.status_code, response.json() if response.content else {})
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = str(event.get("type")), event.get("object") or {}
                if kind == "ERROR":
                    _raise_for(int(obj.get("code", 500)), obj)
                yield kind, obj

    async def close(self) -> None:
        await self._http.aclose()
