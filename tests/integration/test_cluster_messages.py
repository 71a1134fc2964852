"""Cluster mode with the Firestore store: messages both ways, and a lost volume restored.

The API and the connectors share the store (the official Firestore emulator), as in
a real install: the API queues sends and reads threads, the connectors send and store.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from support.cluster import Cluster, api_client
from support.firestore import FirestoreEmulator, firestore_emulator
from support.process import wait_until
from wafleet.core.models import iso

pytestmark = [pytest.mark.k8s, pytest.mark.firestore]

__all__ = ["firestore_emulator"]

PHONES = ["+40712888001", "+40712888002", "+40712888003"]
CONTACT = "+40799000777"
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    running = Cluster(
        tmp_path_factory.mktemp("fs-cluster"),
        sessions_per_shard=2,
        max_shards=4,
        extra_env={
            "WAFLEET_STORE": "firestore",
            "WAFLEET_FIRESTORE_PROJECT": firestore_emulator.project,
            "WAFLEET_BACKUP_KEY": KEY,
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        },
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def onboard(cluster: Cluster, api: httpx.Client, sim: httpx.Client) -> dict[str, str]:
    ids = {}
    for phone in PHONES:
        response = api.post("/api/whatsapp/add-account", json={"phone": phone})
        assert response.status_code == 200, response.text
        ids[phone] = response.json()["account"]["id"]
    for phone, account_id in ids.items():

        def linked(account_id: str = account_id, phone: str = phone) -> bool:
            account: dict[str, Any] = api.get(f"/api/whatsapp/accounts/{account_id}").json()[
                "account"
            ]
            if account["status"] == "connected":
                return True
            if account["qr"]:
                sim.post("/sim/scan", json={"qr": account["qr"], "phone": phone})
            return False

        wait_until(f"{account_id} connected", linked, 60, interval=0.3)
    return ids


def test_messages_both_ways_and_a_lost_volume_restored(cluster: Cluster) -> None:
    with api_client(cluster.api_url) as api, httpx.Client(base_url=cluster.sim_url) as sim:
        ids = onboard(cluster, api, sim)

        # Inbound: the connector stores it in Firestore; the API reads it from there.
        delivered = []
        for phone in PHONES:
            sent = sim.post("/sim/messages", json={"from": CONTACT, "to": phone, "text": "hi"})
            delivered.append(sent.json()["id"])

        def stored() -> bool:
            threads = api.get("/api/whatsapp/messages").json()["threads"]
            ids_seen = {m["waMessageId"] for t in threads for m in t["messages"]}
            return set(delivered) <= ids_seen

        wait_until("inbound stored in Firestore", stored, 30)

        # Outbound: queued by the API in Firestore, claimed and sent by the owning connector.
        for phone, account_id in ids.items():
            response = api.post(
                "/api/whatsapp/send-message",
                json={"accountId": account_id, "to": CONTACT, "message": f"from {phone}"},
            )
            assert response.status_code == 200, response.text
        wait_until(
            "outbound received",
            lambda: (
                len(sim.get("/sim/messages", params={"phone": CONTACT}).json()["messages"])
                == len(PHONES)
            ),
            30,
        )

        # Shard 0 moves to a new node: its pod is gone with its volume.
        follower = cluster.follower
        assert follower is not None
        follower.paused.add(0)
        follower.kill(0)
        killed_at = iso(datetime.now(UTC))
        volume = cluster.workdir / "volumes" / "data-wafleet-connector-0"
        on_zero = [
            cr["metadata"]["name"]
            for cr in cluster.accounts()
            if cr["metadata"]["labels"].get("wafleet.io/shard") == "0"
        ]
        assert on_zero
        shutil.rmtree(volume)
        devices = sim.get("/sim/status").json()["devices"]
        follower.paused.discard(0)

        def back() -> bool:
            statuses = {cr["metadata"]["name"]: cr.get("status") or {} for cr in cluster.accounts()}
            return all(
                statuses[name].get("phase") == "Connected"
                and (statuses[name].get("connectedAt") or "") > (killed_at or "")
                for name in on_zero
            )

        wait_until("shard 0 back from its backups", back, 60, interval=0.5)
        assert sim.get("/sim/status").json()["devices"] == devices, "a new device was linked"
        for name in on_zero:
            assert (volume / "sessions" / f"{name}.db").exists()
