"""The cluster API's account cache: opaque resourceVersions, and readiness that goes stale."""

from __future__ import annotations

import time
from typing import Any

from kubernetes_asyncio.client import Configuration

from wafleet.kube.client import KubeClient
from wafleet_api.cluster_backend import STALE_MARGIN, AccountCache, ClusterBackend


def cr(name: str, version: str, phase: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": version}, "status": {"phase": phase}}


def kube() -> KubeClient:
    return KubeClient(Configuration(host="http://127.0.0.1:9"), watch_read_timeout=5)


async def test_a_write_response_never_undoes_a_newer_watch_event() -> None:
    cache = AccountCache(kube(), "wafleet")
    await cache._listed([cr("wa-a", "x10", "Pending")])
    # Our patch answered with version "x11"; the watch delivers x11, then x12, and only then
    # does the patch's response reach the cache: it must not win over x12.
    await cache._event("MODIFIED", cr("wa-a", "x11", "Connecting"))
    await cache._event("MODIFIED", cr("wa-a", "x12", "Connected"))
    cache.put(cr("wa-a", "x11", "Connecting"))
    assert cache.items["wa-a"]["status"]["phase"] == "Connected"
    # A response the watch has not delivered yet is applied (the event follows later).
    cache.put(cr("wa-a", "9", "Suspended"))  # opaque: "9" < "x12" means nothing
    assert cache.items["wa-a"]["status"]["phase"] == "Suspended"


async def test_readiness_turns_stale_without_word_from_the_api_server() -> None:
    backend = ClusterBackend(kube(), "wafleet", open_store=None)  # type: ignore[arg-type]
    assert not backend.ready()  # never listed
    backend.cache.watch.synced.set()
    backend.cache.watch.contact = time.monotonic()
    assert backend.ready()
    backend.cache.watch.contact = time.monotonic() - (5 + STALE_MARGIN + 1)
    assert not backend.ready()  # a silent or failing watch beyond the bound
