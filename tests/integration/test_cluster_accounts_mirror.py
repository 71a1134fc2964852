"""Cluster mode on Firestore: the connector that runs an account keeps ``accounts/{id}``.

Accounts get legacy ids here (``WAFLEET_ACCOUNT_IDS=legacy``), so the document is named by
the account's id (``account_prod_...``), not by its Kubernetes name. The delete goes the
cluster's way: the API deletes the resource, the connector unlinks the device, marks the
document deleted and releases its finalizer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.cloud.firestore import Client

from support.cluster import Cluster, api_client
from support.firestore import FirestoreEmulator, firestore_emulator
from support.process import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.firestore]

__all__ = ["firestore_emulator"]

PHONE = "+40712888101"
KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    firestore_emulator.clear()
    running = Cluster(
        tmp_path_factory.mktemp("mirror-cluster"),
        extra_env={
            "WAFLEET_STORE": "firestore",
            "WAFLEET_FIRESTORE_PROJECT": firestore_emulator.project,
            "WAFLEET_BACKUP_KEY": KEY,
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
            "WAFLEET_ACCOUNT_IDS": "legacy",
            "WAFLEET_ACCOUNTS_MIRROR_DELAY": "0.3",
        },
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()


def test_the_connector_mirrors_its_account_and_marks_the_delete(
    cluster: Cluster, firestore_emulator: FirestoreEmulator
) -> None:
    firestore = Client(project=firestore_emulator.project)
    with api_client(cluster.api_url) as api, httpx.Client(base_url=cluster.sim_url) as sim:
        added = api.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": "Shop"})
        assert added.status_code == 200, added.text
        account_id = added.json()["account"]["id"]
        assert account_id.startswith("account_prod_")

        def doc() -> dict[str, Any] | None:
            return firestore.document(f"accounts/{account_id}").get().to_dict()

        def status_is(status: str) -> dict[str, Any] | None:
            current = doc()
            return current if current is not None and current["status"] == status else None

        waiting = wait_until("qr_ready in Firestore", lambda: status_is("qr_ready"), 60)
        assert waiting["qrCode"].startswith("data:image/png;base64,")
        account = api.get(f"/api/whatsapp/accounts/{account_id}").json()["account"]
        assert sim.post("/sim/scan", json={"qr": account["qr"], "phone": PHONE}).status_code == 200

        connected = wait_until("connected in Firestore", lambda: status_is("connected"), 60)
        assert connected["accountId"] == account_id and connected["phoneE164"] == PHONE
        assert connected["worker"]["service"] == "wafleet-connector"
        assert connected["worker"]["instanceId"] == "wafleet-connector-0"
        names = [cr["metadata"]["name"] for cr in cluster.accounts()]
        assert len(names) == 1 and names[0] != account_id
        assert not firestore.document(f"accounts/{names[0]}").get().exists

        assert api.delete(f"/api/whatsapp/accounts/{account_id}").status_code == 200
        gone = wait_until("deleted in Firestore", lambda: status_is("deleted"), 60)
        assert gone["accountId"] == account_id and gone["qrCode"] is None
        wait_until("the resource gone", lambda: not cluster.accounts(), 60)
    firestore.close()
