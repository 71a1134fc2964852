"""The Kubernetes client against a loopback server that answers as a real one can."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes_asyncio.client import Configuration

from wafleet.kube.client import (
    ACCOUNTS,
    Conflict,
    Gone,
    KubeClient,
    KubeError,
    TooManyRequests,
    WatchTimeout,
    error_of,
)

APF_BODY = "Too many requests, please try again later.\n"


def test_error_bodies_become_errors_json_or_text() -> None:
    throttled = error_of(429, APF_BODY, {"Retry-After": "3"})
    assert isinstance(throttled, TooManyRequests) and throttled.retry_after == 3.0
    assert throttled.message == APF_BODY.strip() and throttled.transient
    status = json.dumps({"kind": "Status", "reason": "Conflict", "message": "modified"})
    conflict = error_of(409, status)
    assert isinstance(conflict, Conflict) and conflict.message == "modified"
    assert not conflict.transient
    unavailable = error_of(503, "upstream connect error")
    assert type(unavailable) is KubeError and unavailable.transient
    assert error_of(429, "", {"Retry-After": "soon"}).retry_after is None


@pytest.fixture
async def server() -> AsyncIterator[tuple[KubeClient, dict[str, Any]]]:
    release = asyncio.Event()
    behaviour: dict[str, Any] = {"list": "throttle", "watch": "silent"}

    async def listing(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            return await watch(request)
        if behaviour["list"] == "throttle":
            return web.Response(
                status=429, text=APF_BODY, content_type="text/plain", headers={"Retry-After": "2"}
            )
        return web.json_response({"kind": "List", "metadata": {"resourceVersion": "a1"}})

    async def watch(request: web.Request) -> web.StreamResponse:
        assert request.query["allowWatchBookmarks"] == "true"
        response = web.StreamResponse()
        await response.prepare(request)
        bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "b2"}}}
        await response.write(json.dumps(bookmark).encode() + b"\n")
        if behaviour["watch"] == "gone":
            error = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Gone"}}
            await response.write(json.dumps(error).encode() + b"\n")
            return response
        await release.wait()  # half-open: the stream stays up and says nothing
        return response

    app = web.Application()
    app.router.add_get(ACCOUNTS.path("wafleet"), listing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    configuration = Configuration(host=f"http://127.0.0.1:{port}")
    kube = KubeClient(configuration)
    try:
        yield kube, behaviour
    finally:
        release.set()
        await kube.close()
        await runner.cleanup()


async def test_a_plain_text_429_is_an_error_with_retry_after(
    server: tuple[KubeClient, dict[str, Any]],
) -> None:
    kube, behaviour = server
    with pytest.raises(TooManyRequests) as throttled:
        await kube.list(ACCOUNTS, "wafleet")
    assert throttled.value.retry_after == 2.0
    behaviour["list"] = "ok"
    assert (await kube.list(ACCOUNTS, "wafleet"))["metadata"]["resourceVersion"] == "a1"


async def test_a_half_open_watch_ends_in_a_watch_timeout(
    server: tuple[KubeClient, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    kube, _ = server
    kube.watch_read_timeout = 0.5
    seen = []
    with pytest.raises(WatchTimeout):
        async for kind, obj in kube.watch(ACCOUNTS, "wafleet", resource_version="a1"):
            seen.append((kind, obj["metadata"]["resourceVersion"]))
    assert seen == [("BOOKMARK", "b2")]  # bookmarks reach the caller as heartbeats


async def test_a_watch_error_event_raises_its_error(
    server: tuple[KubeClient, dict[str, Any]],
) -> None:
    kube, behaviour = server
    behaviour["watch"] = "gone"
    with pytest.raises(Gone):
        async for _ in kube.watch(ACCOUNTS, "wafleet", resource_version="a1"):
            pass
