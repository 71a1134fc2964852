"""The fleet's policy as a WhatsAppFleet object, end to end on the emulator: the kopf
operator, API, connectors and sim as real processes; the fleet object created by the
operator pod's init step (``python -m wafleet_operator.bootstrap``, as the chart runs it).

One cluster for the module; the tests run in order on one fleet (environment defaults:
2 accounts per shard, at most 3 shards) and each says what it leaves behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.cluster import NAMESPACE, STATEFULSET, Cluster
from support.process import wait_until

pytestmark = pytest.mark.k8s

FLEET = "wafleet"
FLEETS = f"/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}/whatsappfleets"
CHART = {"sessionsPerShard": "2", "minShards": "1", "maxShards": "3"}  # the chart's values


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = Cluster(tmp_path_factory.mktemp("fleet"), sessions_per_shard=2, max_shards=3)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def phone(n: int) -> str:
    return f"+40714{n:06d}"


def bootstrap(cluster: Cluster, **values: str) -> str:
    """The operator pod's init container, with the environment the chart gives it."""
    chart = {**CHART, **values}
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.api.kubeconfig),
        "WAFLEET_NAMESPACE": NAMESPACE,
        "WAFLEET_PEERING_NAME": "wafleet",
        "WAFLEET_FLEET_NAME": FLEET,
        "WAFLEET_CONNECTOR_STATEFULSET": STATEFULSET,
        "WAFLEET_SESSIONS_PER_SHARD": chart["sessionsPerShard"],
        "WAFLEET_MIN_SHARDS": chart["minShards"],
        "WAFLEET_MAX_SHARDS": chart["maxShards"],
    }
    result = subprocess.run(
        [sys.executable, "-m", "wafleet_operator.bootstrap"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def fleet(cluster: Cluster, name: str = FLEET) -> dict[str, Any] | None:
    response = httpx.get(f"{cluster.api.url}{FLEETS}/{name}", timeout=10)
    return None if response.status_code == 404 else dict(response.json())


def status(cluster: Cluster) -> dict[str, Any]:
    found = fleet(cluster) or {}
    return dict(found.get("status") or {})


def conditions(cluster: Cluster, name: str = FLEET) -> dict[str, dict[str, Any]]:
    found = fleet(cluster, name) or {}
    return {c["type"]: c for c in (found.get("status") or {}).get("conditions", [])}


def observed(cluster: Cluster) -> dict[str, Any] | None:
    """The status, once it reflects the spec's current generation."""
    found = fleet(cluster)
    if found is None:
        return None
    current = found.get("status") or {}
    return current if current.get("observedGeneration") == found["metadata"]["generation"] else None


def patch_fleet(cluster: Cluster, spec: dict[str, Any]) -> dict[str, Any]:
    cluster.kubectl(
        "patch", "waf", FLEET, "-n", NAMESPACE, "--type", "merge", "-p", json.dumps({"spec": spec})
    )
    return wait_until("the status of the new generation", lambda: observed(cluster), 20)


def shards(cluster: Cluster) -> dict[str, int | None]:
    result: dict[str, int | None] = {}
    for cr in cluster.accounts():
        label = (cr["metadata"].get("labels") or {}).get("wafleet.io/shard")
        result[cr["metadata"]["name"]] = None if label is None else int(label)
    return result


def placed(cluster: Cluster, name: str) -> int:
    found = wait_until(f"{name} placed", lambda: shards(cluster).get(name) is not None, 30)
    assert found
    shard = shards(cluster)[name]
    assert shard is not None
    return shard


def refusal(cluster: Cluster, name: str, message: str) -> dict[str, Any]:
    """The account's Assigned condition, once False with a message starting so."""

    def condition() -> dict[str, Any] | None:
        cr = next(c for c in cluster.accounts() if c["metadata"]["name"] == name)
        found = {c["type"]: c for c in (cr.get("status") or {}).get("conditions", [])}
        assigned = found.get("Assigned") or {}
        refused = assigned.get("status") == "False"
        return assigned if refused and assigned["message"].startswith(message) else None

    return wait_until(f"{name} refused: {message}", condition, 30)


def replicas(cluster: Cluster) -> int:
    assert cluster.follower is not None
    return cluster.follower.replicas()


def test_without_a_fleet_object_the_environment_decides(cluster: Cluster) -> None:
    for n in range(3):
        cluster.create_account(f"fleet-a{n}", phone(n))
    assert [placed(cluster, f"fleet-a{n}") for n in range(3)] == [0, 0, 1]  # 2 per shard
    wait_until("two connectors", lambda: replicas(cluster) == 2, 20)
    assert "No resources found" in cluster.kubectl("get", "waf", "-n", NAMESPACE).stderr


def test_the_chart_creates_the_fleet_and_its_status_shows_each_shard(cluster: Cluster) -> None:
    out = bootstrap(cluster)
    assert f"WhatsAppFleet {NAMESPACE}/{FLEET} created" in out

    def ready() -> dict[str, Any] | None:
        current = observed(cluster)
        ok = current and {c["type"]: c["status"] for c in current["conditions"]}["Ready"] == "True"
        return current if ok else None

    current = wait_until("the fleet Ready", ready, 30)
    assert (current["accounts"], current["pending"], current["replicas"]) == (3, 0, 2)
    assert current["policy"] == {
        "sessionsPerShard": 2,
        "minShards": 1,
        "maxShards": 3,
        "shardLimit": 1000,
    }
    assert current["shards"] == [
        {
            "ordinal": 0,
            "accounts": 2,
            "capacity": 2,
            "leaseHolder": f"{STATEFULSET}-0",
            "leaseCurrent": True,
            "draining": False,
        },
        {
            "ordinal": 1,
            "accounts": 1,
            "capacity": 2,
            "leaseHolder": f"{STATEFULSET}-1",
            "leaseCurrent": True,
            "draining": False,
        },
    ]
    found = {c["type"]: c for c in current["conditions"]}
    assert found["CapacityAvailable"]["status"] == "True"
    assert "room for 3 more accounts" in found["CapacityAvailable"]["message"]
    assert found["PolicyApplied"]["status"] == "True"

    table = cluster.kubectl("get", "waf", "-n", NAMESPACE).stdout.splitlines()
    assert table[0].split() == ["NAME", "ACCOUNTS", "SHARDS", "PENDING", "READY", "MOVING", "AGE"]
    assert table[1].split()[:6] == [FLEET, "3", "2", "0", "True", "0"]
    wide = cluster.kubectl("get", "waf", "-n", NAMESPACE, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == [
        "MOVING",
        "CAPACITY",
        "PER-SHARD",
        "MAX-SHARDS",
        "DRAINING",
        "STATEFULSET",
        "AGE",
    ]
    assert wide[1].split()[5:10] == ["0", "True", "2", "3", STATEFULSET]  # no DRAINING cell
    everything = cluster.kubectl("get", "wafleet", "-n", NAMESPACE, "-o", "name").stdout
    assert f"whatsappfleet.wafleet.io/{FLEET}" in everything  # the wafleet category
    assert "whatsappaccount.wafleet.io/fleet-a0" in everything

    assert "is up to date" in bootstrap(cluster)  # the operator pod restarted


def test_the_policy_changes_at_runtime_without_an_operator_restart(cluster: Cluster) -> None:
    operator = cluster.operator
    assert operator is not None and operator.popen is not None
    pid = operator.popen.pid
    before = shards(cluster)

    assert patch_fleet(cluster, {"maxShards": 2})["policy"]["maxShards"] == 2
    cluster.create_account("fleet-b0", phone(10))
    assert placed(cluster, "fleet-b0") == 1  # shards 0 and 1 now hold 2 each: full
    cluster.create_account("fleet-b1", phone(11))
    condition = refusal(cluster, "fleet-b1", "all 2 shards are full")
    assert condition["reason"] == "NoCapacity"
    full = wait_until(
        "the fleet full",
        lambda: conditions(cluster)["CapacityAvailable"]["status"] == "False" or None,
        20,
    )
    assert full
    capacity = conditions(cluster)["CapacityAvailable"]
    assert capacity["reason"] == "NoCapacity"
    assert capacity["message"].startswith("all 2 shards are full (2 sessions each, 4 in all)")
    assert status(cluster)["pending"] == 1

    patch_fleet(cluster, {"sessionsPerShard": 3})
    assert placed(cluster, "fleet-b1") == 0  # the Pending retry, with the new policy
    wait_until("nothing pending", lambda: status(cluster)["pending"] == 0, 20)

    # Below the shards' loads (3 and 2): nobody moves; a third shard opens for the next.
    patch_fleet(cluster, {"sessionsPerShard": 1, "maxShards": 3})
    cluster.create_account("fleet-b2", phone(12))
    assert placed(cluster, "fleet-b2") == 2
    wait_until("a third connector", lambda: replicas(cluster) == 3, 20)
    now = shards(cluster)
    assert {name: now[name] for name in before} == before
    assert now["fleet-b0"] == 1 and now["fleet-b1"] == 0
    rows = wait_until(
        "shard 2 counted",
        lambda: len(rows := status(cluster)["shards"]) == 3 and rows[2]["accounts"] == 1 and rows,
        20,
    )
    assert [(r["accounts"], r["capacity"]) for r in rows] == [(3, 1), (2, 1), (1, 1)]

    patch_fleet(cluster, {"minShards": 4, "maxShards": 4})
    wait_until("four connectors, no new account needed", lambda: replicas(cluster) == 4, 20)
    wait_until("the status shows them", lambda: status(cluster)["replicas"] == 4, 20)
    assert operator.alive() and operator.popen.pid == pid  # no restart


def test_a_silent_shard_turns_the_fleet_not_ready(cluster: Cluster) -> None:
    follower = cluster.follower
    assert follower is not None
    wait_until("Ready first", lambda: conditions(cluster)["Ready"]["status"] == "True", 30)
    follower.paused.add(1)
    follower.kill(1)  # its Lease (6 s) is no longer renewed
    try:
        ready = wait_until(
            "the fleet not Ready",
            lambda: (c := conditions(cluster)["Ready"])["status"] == "False" and c,
            30,
        )
        assert ready["reason"] == "LeaseNotCurrent"
        assert ready["message"].startswith("shard 1 (2 accounts) has no current Lease")
        row = status(cluster)["shards"][1]
        assert row["leaseCurrent"] is False and row["leaseHolder"] == f"{STATEFULSET}-1"
        table = cluster.kubectl("get", "waf", "-n", NAMESPACE).stdout.splitlines()
        assert table[1].split()[4] == "False"
    finally:
        follower.paused.discard(1)
    wait_until("Ready again", lambda: conditions(cluster)["Ready"]["status"] == "True", 30)


def test_a_second_fleet_object_for_the_same_statefulset_is_ignored(cluster: Cluster) -> None:
    cluster.apply(
        {
            "apiVersion": "wafleet.io/v1alpha1",
            "kind": "WhatsAppFleet",
            "metadata": {"name": "another", "namespace": NAMESPACE},
            "spec": {"statefulSet": STATEFULSET, "maxShards": 1},
        }
    )
    try:
        ready = wait_until(
            "the duplicate told",
            lambda: conditions(cluster, "another").get("Ready"),
            20,
        )
        assert ready["status"] == "False" and ready["reason"] == "Duplicate"
        assert f"the fleet {FLEET} (the oldest) governs" in ready["message"]
        assert status(cluster)["policy"]["maxShards"] == 4  # still the first one's
    finally:
        cluster.kubectl("delete", "waf", "another", "-n", NAMESPACE)


def test_deleting_the_fleet_object_falls_back_to_the_environment(cluster: Cluster) -> None:
    cluster.kubectl("delete", "waf", FLEET, "-n", NAMESPACE)  # no finalizer holds it
    assert fleet(cluster) is None
    # The environment's 2 per shard, not the deleted object's 1: shard 2 (1 account) has
    # room, then all 3 shards are full. (Should the operator decide before it has seen
    # the deletion, the Pending account's retry decides again within 10 s.)
    cluster.create_account("fleet-c0", phone(20))
    assert placed(cluster, "fleet-c0") == 2
    cluster.create_account("fleet-c1", phone(21))
    refusal(cluster, "fleet-c1", "all 3 shards are full (2 sessions each, 6 in all)")
    # minShards back to 1: the empty fourth shard goes, the three occupied ones stay.
    wait_until("three connectors", lambda: replicas(cluster) == 3, 20)
