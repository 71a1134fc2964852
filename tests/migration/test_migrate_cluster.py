"""``migrate-legacy --to cluster``: the session goes in as the first backup, then the account.

The cluster is the Kubernetes API emulator with the real operator, API and connectors, on
the Firestore emulator. After the migration the connector that gets the account finds no
session on its volume, restores the seeded backup, and holds the migrated device there.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import sqlite3
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from google.cloud.firestore import Client

from support.cluster import NAMESPACE, Cluster, api_client
from support.firestore import FirestoreEmulator, firestore_emulator
from support.migrate_cli import migrate, results
from support.process import wait_until
from wafleet.core.ids import account_id_for

if TYPE_CHECKING:
    from migration.conftest import LegacyFixture

pytestmark = [pytest.mark.migration, pytest.mark.k8s, pytest.mark.firestore]

__all__ = ["firestore_emulator"]

KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def cluster(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[Cluster]:
    firestore_emulator.clear()
    running = Cluster(
        tmp_path_factory.mktemp("migrate-cluster"),
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


def device_jid(store: Path) -> str | None:
    if not store.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        try:
            row = db.execute("SELECT jid FROM whatsmeow_device").fetchone()
        except sqlite3.OperationalError:  # still being placed
            return None
    return None if row is None else str(row[0])


def restored_store(cluster: Cluster, account_id: str, jid: str) -> Path | None:
    """The session store on a connector's volume, once it holds the migrated device."""
    for volume in (cluster.workdir / "volumes").glob("data-*"):
        store = volume / "sessions" / f"{account_id}.db"
        if device_jid(store) == jid:
            return store
    return None


def test_migrated_accounts_reach_the_connector_with_their_device(
    cluster: Cluster, firestore_emulator: FirestoreEmulator, legacy: LegacyFixture, tmp_path: Path
) -> None:
    sessions = tmp_path / "sessions"
    for account in legacy.accounts[:2]:
        shutil.copytree(account.folder, sessions / account.account_id)
    env = {
        "KUBECONFIG": str(cluster.api.kubeconfig),
        "WAFLEET_NAMESPACE": NAMESPACE,
        **cluster.extra_env,
    }
    done = migrate("--sessions-dir", str(sessions), "--to", "cluster", "--json", env=env)
    assert done.returncode == 0, done.stderr
    outcome = results(done)
    db = Client(project=firestore_emulator.project)
    with api_client(cluster.api_url) as api:
        for account in legacy.accounts[:2]:
            assert outcome[account.account_id]["outcome"] == "migrated"
            me = account.expected["me"]
            name = account_id_for("+" + me["id"].split("@")[0].split(":")[0])
            cr = httpx.get(
                f"{cluster.api.url}/apis/wafleet.io/v1alpha1/namespaces/{NAMESPACE}"
                f"/whatsappaccounts/{name}",
                timeout=10,
            ).json()
            assert cr["spec"]["legacyId"] == account.account_id
            backup = db.document(f"wa_sessions/{name}").get().to_dict()
            assert backup is not None and backup["schemaVersion"] == 3  # under the wa- name

            restored = partial(restored_store, cluster, account.account_id, me["id"])
            wait_until("the connector restored the migrated session", restored, 60, 0.3)
            shown = api.get(f"/api/whatsapp/accounts/{account.account_id}")
            assert shown.status_code == 200
            assert shown.json()["account"]["id"] == account.account_id

    again = migrate("--sessions-dir", str(sessions), "--to", "cluster", "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert {r["outcome"] for r in results(again).values()} == {"skipped"}
