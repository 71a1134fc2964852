"""ShardSync's clean-up hook: awaited before the finalizer goes, and never in its way."""

from __future__ import annotations

from typing import Any

from wafleet.kube.account_cr import CLEANUP_FINALIZER
from wafleet.kube.client import Resource
from wafleet_connector.shard_sync import ShardSync


class FakeKube:
    """get and patch of one WhatsAppAccount, recorded in ``log``."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.meta: dict[str, Any] = {
            "name": "wa-one",
            "resourceVersion": "7",
            "finalizers": [CLEANUP_FINALIZER, "other/keep"],
        }
        self.patches: list[dict[str, Any]] = []

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        self.log.append(f"get {name}")
        return {"metadata": dict(self.meta)}

    async def patch(
        self, resource: Resource, namespace: str, name: str, body: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.log.append(f"patch {name}")
        self.patches.append(body)
        return {"metadata": dict(self.meta, **body["metadata"])}


class FakeStatuses:
    def forget(self, account_id: str) -> None:
        pass


def shard_sync(kube: FakeKube) -> ShardSync:
    return ShardSync(kube, "wafleet", 0, manager=None, statuses=FakeStatuses())  # type: ignore[arg-type]


async def test_the_hook_runs_before_the_finalizer_is_released() -> None:
    log: list[str] = []
    kube = FakeKube(log)
    sync = shard_sync(kube)

    async def marked(account_id: str) -> bool:
        log.append(f"mark {account_id}")
        return True

    sync.on_cleaned_up = marked
    await sync.deleted("wa-one")
    assert log == ["mark wa-one", "get wa-one", "patch wa-one"]
    assert kube.patches[0]["metadata"]["finalizers"] == ["other/keep"]


async def test_a_failing_hook_does_not_keep_the_finalizer() -> None:
    log: list[str] = []
    kube = FakeKube(log)
    sync = shard_sync(kube)

    async def broken(account_id: str) -> None:
        raise RuntimeError("firestore gone")

    sync.on_cleaned_up = broken
    await sync.deleted("wa-one")
    assert log == ["get wa-one", "patch wa-one"]
