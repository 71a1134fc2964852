"""Draining and consolidation, end to end: a full shard of 25 accounts drained while
inbound messages keep arriving, the highest shard drained so that the StatefulSet
shrinks, and consolidation of a fleet whose load fits in fewer shards. Real processes:
the kopf operator, connectors, sim, Firestore emulator and Kubernetes API emulator.

One cluster for the module (25 accounts per shard, at most 3 shards); the tests run in
order on one fleet and each says what it leaves behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.cluster import Cluster, api_client
from support.firestore import FirestoreEmulator, firestore_emulator
from support.mobility import (
    CONTACT,
    Inbound,
    all_connected,
    all_delivered,
    apply_fleet,
    devices,
    every_message_once,
    fleet_object,
    loads,
    mobility_cluster,
    move,
    onboard,
    patch_fleet,
    sim_summary,
    stored_inbound,
)
from support.process import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.firestore, pytest.mark.mobility]

__all__ = ["firestore_emulator"]

FULL = 25
PHONES = [f"+4071266{n:04d}" for n in range(FULL)]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    running = mobility_cluster(
        tmp_path_factory.mktemp("drain"),
        firestore_emulator.project,
        firestore_emulator.host,
        sessions_per_shard=FULL,
        max_shards=3,
    )
    try:
        running.start()
        apply_fleet(running, {})
        yield running
    finally:
        running.stop()


def settled(cluster: Cluster, expected: dict[int, int]) -> bool:
    """Every account Connected with no move open, and the shards holding ``expected``."""
    return all_connected(cluster) and loads(cluster) == expected


def fleet_status(cluster: Cluster) -> dict[str, Any]:
    return dict((fleet_object(cluster) or {}).get("status") or {})


def replicas(cluster: Cluster) -> int:
    assert cluster.follower is not None
    return cluster.follower.replicas()


def test_a_full_shard_drains_while_messages_keep_arriving(
    cluster: Cluster, firestore_emulator: FirestoreEmulator
) -> None:
    ids = onboard(cluster, PHONES, timeout=180)
    assert loads(cluster) == {0: FULL}
    before = devices(cluster, PHONES)
    seen_draining = False
    with api_client(cluster.api_url) as api, Inbound(cluster, PHONES, every=0.02) as inbound:
        wait_until("messages flowing", lambda: inbound.count >= 25, 30)
        patch_fleet(cluster, {"drain": [0]})
        for phone in PHONES[:5]:  # queued while their accounts move: sent once, by the target
            sent = api.post(
                "/api/whatsapp/send-message",
                json={"accountId": ids[phone], "to": CONTACT, "message": f"during {phone}"},
            )
            assert sent.status_code == 200, sent.text

        def drained() -> bool:
            nonlocal seen_draining
            status = fleet_status(cluster)
            rows = {row["ordinal"]: row for row in status.get("shards", [])}
            seen_draining = seen_draining or bool(rows.get(0, {}).get("draining"))
            return settled(cluster, {1: FULL})

        wait_until("shard 0 drained", drained, 180, interval=0.5)
        sent_after = inbound.count
        wait_until("messages after the drain", lambda: inbound.count >= sent_after + 25, 30)
    assert seen_draining, "the fleet status never showed shard 0 draining"
    assert fleet_status(cluster).get("draining") == [0]
    wait_until("every inbound message delivered", lambda: all_delivered(cluster), 60)
    wait_until(
        "every inbound message stored",
        lambda: every_message_once(firestore_emulator.project, inbound, ids),
        60,
    )
    stored = stored_inbound(firestore_emulator.project, list(ids.values()))
    for phone, texts in inbound.sent.items():
        assert all(stored[ids[phone]][text] == 1 for text in texts), "a message stored twice"
    assert devices(cluster, PHONES) == before, "a new device was linked"
    assert sim_summary(cluster)["replacements"] == 0, "two connections drove one device"
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        received = sim.get("/sim/messages", params={"phone": CONTACT}).json()["messages"]
    for phone in PHONES[:5]:
        assert [m["text"] for m in received].count(f"during {phone}") == 1


def test_draining_the_highest_shard_shrinks_the_statefulset(cluster: Cluster) -> None:
    """Leaves all 25 accounts on shard 0, one shard running."""
    assert replicas(cluster) == 2
    patch_fleet(cluster, {"drain": [1]})
    wait_until("shard 1 drained", lambda: settled(cluster, {0: FULL}), 180, interval=0.5)
    wait_until("the StatefulSet shrunk to one shard", lambda: replicas(cluster) == 1, 30)
    assert sim_summary(cluster)["replacements"] == 0
    patch_fleet(cluster, {"drain": []})
    wait_until("no shard draining", lambda: not fleet_status(cluster).get("draining"), 30)


def test_consolidation_drains_the_shards_the_load_fits_without(cluster: Cluster) -> None:
    """Three accounts moved by hand to shard 1: 25 accounts fit in one shard, so with
    consolidation on, shard 1 drains and goes. Leaves 25 on shard 0."""
    names = sorted(str(cr["metadata"]["name"]) for cr in cluster.accounts())[:3]
    for name in names:
        move(cluster, name, 1)
    wait_until("three on shard 1", lambda: settled(cluster, {0: FULL - 3, 1: 3}), 90, 0.5)
    assert replicas(cluster) == 2
    # maxSkew high: consolidation alone acts, not an even spread.
    patch_fleet(cluster, {"rebalance": {"enabled": True, "maxSkew": FULL, "consolidate": True}})
    wait_until("consolidated on shard 0", lambda: settled(cluster, {0: FULL}), 90, interval=0.5)
    wait_until("the StatefulSet shrunk to one shard", lambda: replicas(cluster) == 1, 30)
    assert sim_summary(cluster)["replacements"] == 0
    patch_fleet(cluster, {"rebalance": {"enabled": False}})
