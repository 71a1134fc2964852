"""The shard Lease: MicroTime on the wire, renewals that ride out blips, and fencing.

The Leases live in a small in-memory API with the real server's strictness where the
lease depends on it: resourceVersion conflicts, and MicroTime fields refused unless they
carry exactly six fractional digits (what a real server answers with a 400).
"""

from __future__ import annotations

import asyncio
import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from wafleet.kube.client import Conflict, KubeError, NotFound, Resource, TooManyRequests
from wafleet_connector.lease import LeaseTiming, ShardLease, micro_time

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")
TIMING = LeaseTiming(duration=3, fence=1.0)  # renew deadline 2 s, retry every 0.4 s


@dataclass
class LeaseStore:
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0

    def write(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("acquireTime", "renewTime"):
            value = (body.get("spec") or {}).get(key)
            if value is not None and not MICRO.match(str(value)):
                raise KubeError(400, "BadRequest", f'parsing time "{value}" as MicroTime')
        self.version += 1
        stored = copy.deepcopy(body)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[name] = stored
        return copy.deepcopy(stored)


@dataclass
class FakeKube:
    """One pod's view of the API; ``failing`` makes every call fail like a blip."""

    store: LeaseStore
    failing: KubeError | None = None
    calls: int = 0

    def _check(self) -> None:
        self.calls += 1
        if self.failing is not None:
            raise self.failing

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        self._check()
        if name not in self.store.objects:
            raise NotFound(404, "NotFound", name)
        return copy.deepcopy(self.store.objects[name])

    async def create(self, res: Resource, namespace: str | None, body: dict[str, Any]) -> Any:
        self._check()
        name = body["metadata"]["name"]
        if name in self.store.objects:
            raise Conflict(409, "AlreadyExists", name)
        return self.store.write(name, body)

    async def replace(
        self, res: Resource, namespace: str | None, name: str, body: dict[str, Any]
    ) -> Any:
        self._check()
        current = self.store.objects.get(name)
        if current is None:
            raise NotFound(404, "NotFound", name)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        return self.store.write(name, body)


@dataclass
class Pod:
    kube: FakeKube
    lease: ShardLease
    log: list[str]


def pod(store: LeaseStore, holder: str, log: list[str], stop_takes: float = 0.0) -> Pod:
    kube = FakeKube(store)

    async def on_lost() -> None:
        log.append(f"{holder} stopping sessions")
        await asyncio.sleep(stop_takes)
        log.append(f"{holder} sessions stopped")

    lease = ShardLease(
        kube,  # type: ignore[arg-type]
        namespace="wafleet",
        name="wafleet-connector-shard-0",
        holder=holder,
        timing=TIMING,
        on_lost=on_lost,
    )
    return Pod(kube, lease, log)


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def test_micro_time_always_has_six_fractional_digits() -> None:
    assert micro_time(datetime(2026, 12, 1, 9, 0, 0, 0, tzinfo=UTC)) == (
        "2026-12-01T09:00:00.000000Z"
    )
    assert MICRO.match(micro_time())
    assert LeaseTiming(15, fence=5).renew_deadline == 10  # client-go: 10 of 15
    assert LeaseTiming(15, fence=5).retry == 2
    assert LeaseTiming(15, fence=7).renew_deadline == 8  # a stop may take 7 s
    with pytest.raises(ValueError):
        LeaseTiming(2)


async def test_release_hands_the_lease_back_in_micro_time() -> None:
    store, log = LeaseStore(), []
    a = pod(store, "pod-a", log)
    a.lease.start()
    await wait_for(a.lease.held.is_set)
    await a.lease.release()
    spec = store.objects["wafleet-connector-shard-0"]["spec"]
    assert spec.get("holderIdentity") is None  # a successor need not wait the lease out
    assert MICRO.match(spec["renewTime"]) and spec["leaseDurationSeconds"] == 1
    b = pod(store, "pod-b", log)
    b.lease.start()
    await wait_for(b.lease.held.is_set, timeout=3)
    await b.lease.release()


async def test_a_blip_shorter_than_the_renew_deadline_keeps_the_lease() -> None:
    store, log = LeaseStore(), []
    a = pod(store, "pod-a", log)
    a.lease.start()
    try:
        await wait_for(a.lease.held.is_set)
        calls = a.kube.calls
        a.kube.failing = TooManyRequests(429, "TooManyRequests", "slow down", retry_after=0.5)
        await wait_for(lambda: a.kube.calls >= calls + 2)  # a second try inside the blip
        a.kube.failing = KubeError(503, "ServiceUnavailable", "etcd leader change")
        await wait_for(lambda: a.kube.calls >= calls + 3)
        a.kube.failing = None
        renewed = a.lease.renewed_at
        await wait_for(lambda: a.lease.renewed_at != renewed)
        assert a.lease.held.is_set() and log == []  # no session was stopped
    finally:
        await a.lease.release()


async def test_sessions_stop_before_another_pod_can_take_the_lease() -> None:
    """Fencing: the holder that cannot renew gives up (and stops every session) before
    its lease expires, so the pod that takes it over never overlaps with it."""
    store, log = LeaseStore(), []
    a = pod(store, "pod-a", log, stop_takes=0.3)
    a.lease.start()
    await wait_for(a.lease.held.is_set)
    b = pod(store, "pod-b", log)
    b.lease.start()
    try:
        a.kube.failing = KubeError(0, "Unreachable", "partitioned from the API")

        async def b_took_it() -> None:
            await b.lease.held.wait()
            log.append("pod-b acquired")

        await asyncio.wait_for(b_took_it(), 10)
        assert log == ["pod-a stopping sessions", "pod-a sessions stopped", "pod-b acquired"]
        assert not a.lease.held.is_set() and a.lease.lost.is_set()
        spec = store.objects["wafleet-connector-shard-0"]["spec"]
        assert spec["holderIdentity"] == "pod-b" and spec["leaseTransitions"] == 1
    finally:
        a.kube.failing = None
        await a.lease.release()
        await b.lease.release()
