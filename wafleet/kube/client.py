"""The Kubernetes API for the connector, the API and the operator's own calls.

The transport, TLS and authentication are the official asyncio client's
(``kubernetes_asyncio``: its ``Configuration`` and ``ApiClient``); this module adds what
our loops need from every call, whatever the resource:

- every error body becomes its own error, JSON ``Status`` or plain text (the real server
  answers API Priority and Fairness rejections, 429, with ``text/plain``);
- ``Retry-After`` is read into ``KubeError.retry_after``;
- watches have a read timeout (``WATCH_READ_TIMEOUT``) and ask for bookmarks, which
  reach the caller as heartbeats (``BOOKMARK``): a half-open stream ends in WatchTimeout;
- resourceVersions are opaque strings: passed back as they came, never compared.

Objects stay plain dicts (custom resources are dicts in the official client too).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration

Obj = dict[str, Any]
PatchKind = Literal["merge", "json"]
_PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}
WATCH_READ_TIMEOUT = 90.0  # seconds without a line (event or bookmark): the watch is dead
REQUEST_TIMEOUT = 30.0


class KubeError(Exception):
    def __init__(
        self, status: int, reason: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after  # seconds, from the Retry-After header

    @property
    def transient(self) -> bool:
        """Worth retrying as it is: throttled, a server error, or no answer."""
        return self.status in (0, 408, 429) or self.status >= 500


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    """409: a stale resourceVersion, or the object already exists (reason AlreadyExists)."""


class Gone(KubeError):
    """410: the resourceVersion a watch resumes from is too old; list again."""


class Invalid(KubeError):
    """422: the object is invalid, or a JSON patch's ``test`` operation failed (the field
    it guards changed since it was read)."""


class TooManyRequests(KubeError):
    """429: API Priority and Fairness (or a webhook) asks to come back after retry_after."""


class WatchTimeout(KubeError):
    """A watch sent nothing (no event, no bookmark) for WATCH_READ_TIMEOUT: half-open."""


_ERRORS: dict[int, type[KubeError]] = {
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_of(status: int, text: str, headers: Any = None) -> KubeError:
    """The error for a response: a JSON Status, or whatever text the server sent."""
    reason, message = "", text.strip()[:500]
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = None
    if isinstance(body, dict):
        reason = str(body.get("reason", ""))
        message = str(body.get("message", "")) or message
    if not reason and status == 429:
        reason = "TooManyRequests"
    return _ERRORS.get(status, KubeError)(status, reason, message, _retry_after(headers))


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
    def __init__(
        self,
        configuration: Configuration,
        timeout: float = REQUEST_TIMEOUT,
        watch_read_timeout: float = WATCH_READ_TIMEOUT,
    ) -> None:
        self._configuration = configuration
        self._client: ApiClient | None = None  # made in the event loop it will serve
        self._timeout = timeout
        self.watch_read_timeout = watch_read_timeout

    @property
    def _api(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self._configuration)
        return self._client

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        read_timeout: aiohttp.ClientTimeout | float | None = None,
    ) -> aiohttp.ClientResponse:
        headers = {"Accept": "application/json"}
        if body is not None or method in ("POST", "PUT", "PATCH", "DELETE"):
            headers["Content-Type"] = content_type
        try:
            response: aiohttp.ClientResponse = await self._api.call_api(
                path,
                method,
                query_params=list((params or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=self._timeout if read_timeout is None else read_timeout,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, "Unreachable", f"{type(exc).__name__}: {exc}") from exc
        return response

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        response = await self._send(
            method, path, body=body, params=params, content_type=content_type
        )
        try:
            text = await response.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeError(0, "Unreachable", f"{type(exc).__name__}: {exc}") from exc
        finally:
            response.release()
        if response.status >= 400:
            raise error_of(response.status, text, response.headers)
        try:
            data = json.loads(text) if text else {}
        except ValueError as exc:
            raise KubeError(response.status, "BadResponse", text[:200]) from exc
        return data if isinstance(data, dict) else {}

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
        """Yield (type, object) until the server ends the watch (BOOKMARK included).

        Raises Gone when the resourceVersion is too old, WatchTimeout when nothing (not even
        a bookmark) came for ``watch_read_timeout``, KubeError for anything else."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        if label_selector:
            params["labelSelector"] = label_selector
        stream = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout)
        response = await self._send("GET", res.path(namespace), params=params, read_timeout=stream)
        try:
            if response.status >= 400:
                text = await response.text(errors="replace")
                raise error_of(response.status, text, response.headers)
            while True:
                try:
                    line = await asyncio.wait_for(
                        response.content.readline(), self.watch_read_timeout
                    )
                except TimeoutError:
                    raise WatchTimeout(
                        0, "WatchTimeout", f"nothing for {self.watch_read_timeout:.0f} s"
                    ) from None
                except aiohttp.ClientError as exc:
                    raise KubeError(0, "WatchBroken", str(exc)) from exc
                if not line:
                    return  # the server ended the watch (timeoutSeconds)
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise KubeError(0, "WatchBroken", "a watch line is not JSON") from exc
                kind, obj = str(event.get("type")), event.get("object") or {}
                if kind == "ERROR":
                    raise error_of(int(obj.get("code", 500)), json.dumps(obj))
                yield kind, obj
        finally:
            response.close()  # never hand a half-read stream back to the pool

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
