"""The cluster API's account cache: opaque resourceVersions, and readiness that goes stale."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import Configuration

from wafleet.core.models import AccountSpec
from wafleet.core.phases import Phase
from wafleet.kube.account_cr import SHARD_LABEL, account_of, new_account_cr
from wafleet.kube.client import KubeClient
from wafleet_api.cluster_backend import STALE_MARGIN, AccountCache, ClusterBackend
from wafleet_api.views import account_view

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


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
    backend = ClusterBackend(kube(), "wafleet", open_store=None, open_hooks=None)  # type: ignore[arg-type]
    assert not backend.ready()  # never listed
    backend.cache.watch.synced.set()
    backend.cache.watch.contact = time.monotonic()
    assert backend.ready()
    backend.cache.watch.contact = time.monotonic() - (5 + STALE_MARGIN + 1)
    assert not backend.ready()  # a silent or failing watch beyond the bound


def account_cr(name: str, version: str, phase: str, **meta: Any) -> dict[str, Any]:
    spec = AccountSpec(id=name, phone="+40712345678", name=name, created_at=T0)
    resource = new_account_cr(spec)
    resource["metadata"].update(resourceVersion=version, **meta)
    resource["status"] = {"phase": phase}
    return resource


async def test_reads_come_from_the_index_the_watch_keeps() -> None:
    cache = AccountCache(kube(), "wafleet")
    broken = {**account_cr("wa-broken", "2", "QRReady"), "status": {"qr": "not an object"}}
    await cache._listed([account_cr("wa-a", "1", "Pending"), broken])
    assert [a.id for a in cache.index.snapshot().accounts] == ["wa-a"]  # undecodable: left out
    before = cache.index.snapshot()
    await cache._event("MODIFIED", account_cr("wa-a", "3", "Connected"))
    after = cache.index.snapshot()
    assert after is not before
    assert after.accounts[0].status.phase == Phase.CONNECTED
    # Being deleted (the connector's finalizer holds it): gone for the API already.
    await cache._event("MODIFIED", account_cr("wa-a", "4", "Connected", deletionTimestamp="x"))
    assert cache.index.get("wa-a") is None and "wa-a" in cache.items
    await cache._event("DELETED", account_cr("wa-a", "5", "Connected"))
    assert "wa-a" not in cache.items and len(cache.index) == 0


async def test_an_accounts_shard_is_its_label() -> None:
    placed = cr("wa-a", "1", "Connected")
    placed["metadata"]["labels"] = {SHARD_LABEL: "3"}
    assert account_view(account_of(placed))["shard"] == 3
    assert account_view(account_of(cr("wa-b", "1", "Pending")))["shard"] is None
