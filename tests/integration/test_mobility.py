"""Sessions that move between shards, end to end: the kopf operator, connectors, sim,
Firestore emulator and Kubernetes API emulator as real processes (docs/design/mobility.md).

Every test checks the guarantees of a move: no two connections ever drive one device
(the sim counts stream replacements: zero), the device after a move is the one before it,
every inbound message sent while sessions move is stored exactly once, and an outbound
message queued for a moving account is sent once, by its new shard.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.cluster import Cluster, api_client
from support.firestore import FirestoreEmulator, firestore_emulator
from support.mobility import (
    CONTACT,
    Inbound,
    PhaseLog,
    account,
    all_delivered,
    devices,
    every_message_once,
    mobility_cluster,
    move,
    onboard,
    settled_on,
    shard_of,
    sim_summary,
    stored_inbound,
)
from support.process import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.firestore, pytest.mark.mobility]

__all__ = ["firestore_emulator"]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    running = mobility_cluster(
        tmp_path_factory.mktemp("mobility"), firestore_emulator.project, firestore_emulator.host
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def phones(first: int, count: int) -> list[str]:
    return [f"+4071255{n:04d}" for n in range(first, first + count)]


def test_one_move_keeps_the_device_and_every_message(
    cluster: Cluster, firestore_emulator: FirestoreEmulator
) -> None:
    numbers = phones(1, 2)
    ids = onboard(cluster, numbers)
    moving, staying = ids[numbers[0]], ids[numbers[1]]
    assert shard_of(account(cluster, moving)) == 0 == shard_of(account(cluster, staying))
    before = devices(cluster, numbers)
    with (
        api_client(cluster.api_url) as api,
        Inbound(cluster, numbers) as inbound,
        PhaseLog(cluster, [moving]) as phases,
    ):
        wait_until("messages flowing", lambda: inbound.count >= 10, 30)
        response = api.post(
            "/api/whatsapp/send-message",
            json={"accountId": moving, "to": CONTACT, "message": "queued around the move"},
        )
        assert response.status_code == 200, response.text
        move(cluster, moving, 1)  # shard 1 is not running yet: the fleet scales up for it
        wait_until("the move done", lambda: settled_on(cluster, moving, 1), 60, interval=0.3)
        sent_after = inbound.count
        wait_until("messages after the move", lambda: inbound.count >= sent_after + 10, 30)
    assert "Moving" in phases.seen[moving], phases.seen
    wait_until("every inbound message delivered", lambda: all_delivered(cluster), 30)
    wait_until(
        "every inbound message stored",
        lambda: every_message_once(firestore_emulator.project, inbound, ids),
        30,
    )
    stored = stored_inbound(firestore_emulator.project, list(ids.values()))
    for phone, texts in inbound.sent.items():
        counted = stored[ids[phone]]
        assert all(counted[text] == 1 for text in texts), "an inbound message stored twice"
    assert devices(cluster, numbers) == before, "a new device was linked"
    assert sim_summary(cluster)["replacements"] == 0, "two connections drove one device"
    assert shard_of(account(cluster, staying)) == 0
    with httpx.Client(base_url=cluster.sim_url, timeout=10) as sim:
        received = sim.get("/sim/messages", params={"phone": CONTACT}).json()["messages"]
    outbound = [m for m in received if m.get("text") == "queued around the move"]
    assert len(outbound) == 1, received[-5:]
