"""A real ``wafleet standalone`` process on Firestore keeps ``accounts/{id}`` current.

The process runs with ``WAFLEET_STORE=firestore`` against the official emulator and the
embedded sim; a listener on the document records every version written, while the
account goes through connecting, qr_ready, connected, disconnected (the legacy
``disconnect``), deleted, and is added again.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.cloud.firestore import Client

from support.firestore import FirestoreEmulator, firestore_emulator
from support.process import Standalone, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.firestore]

__all__ = ["firestore_emulator"]

PHONE = "+40712555001"
KEY = base64.b64encode(bytes(range(32))).decode()


class DocumentLog:
    """Every version of one document, as a Firestore listener sees it."""

    def __init__(self, client: Client, path: str) -> None:
        self.versions: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._watch = client.document(path).on_snapshot(self._changed)

    def _changed(self, snapshots: Sequence[Any], *_: object) -> None:
        with self._lock:
            for snapshot in snapshots:
                if snapshot.exists:
                    self.versions.append(snapshot.to_dict())

    def latest(self) -> dict[str, Any] | None:
        with self._lock:
            return self.versions[-1] if self.versions else None

    def statuses(self) -> list[str]:
        """The statuses in order, repeats folded."""
        with self._lock:
            folded: list[str] = []
            for version in self.versions:
                if not folded or folded[-1] != version["status"]:
                    folded.append(version["status"])
            return folded

    def wait_status(self, status: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            latest = self.latest()
            return latest if latest is not None and latest["status"] == status else None

        return wait_until(
            f"accounts doc status {status} (seen {self.statuses()})", reached, timeout
        )

    def close(self) -> None:
        self._watch.unsubscribe()


def in_order(seen: list[str], expected: list[str]) -> bool:
    """``expected`` is a subsequence of ``seen``."""
    rest = iter(seen)
    return all(any(s == e for s in rest) for e in expected)


@pytest.fixture
def standalone(tmp_path: Path, firestore_emulator: FirestoreEmulator) -> Iterator[Standalone]:
    firestore_emulator.clear()
    proc = Standalone(
        data_dir=tmp_path / "data",
        env={
            "WAFLEET_STORE": "firestore",
            "WAFLEET_FIRESTORE_PROJECT": firestore_emulator.project,
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
            "WAFLEET_BACKUP_KEY": KEY,
            # Every change its own write, so the listener sees each state; the debounce
            # itself is covered by tests/unit/connector/test_accounts_mirror.py.
            "WAFLEET_ACCOUNTS_MIRROR_DELAY": "0",
            "WAFLEET_LOG_LEVEL": "debug",
        },
    )
    yield proc
    proc.kill()


@pytest.fixture
def firestore(firestore_emulator: FirestoreEmulator) -> Iterator[Client]:
    client = Client(project=firestore_emulator.project)
    yield client
    client.close()


def account_of(client: httpx.Client, account_id: str) -> dict[str, Any]:
    response = client.get(f"/api/whatsapp/accounts/{account_id}")
    response.raise_for_status()
    account: dict[str, Any] = response.json()["account"]
    return account


def test_the_accounts_document_follows_the_account(
    standalone: Standalone, firestore: Client
) -> None:
    standalone.start()
    with standalone.client() as client:
        added = client.post("/api/whatsapp/add-account", json={"phone": PHONE, "name": "Desk"})
        assert added.status_code == 200, added.text
        account_id = added.json()["account"]["id"]
        doc = DocumentLog(firestore, f"accounts/{account_id}")
        try:
            waiting = doc.wait_status("qr_ready")
            assert waiting["qrCode"].startswith("data:image/png;base64,")
            # The document's QR is the one the API shows (the same PNG).
            wait_until(
                "the API and the document to show one QR code",
                lambda: account_of(client, account_id)["qrCode"] == doc.latest()["qrCode"],  # type: ignore[index]
                30,
            )
            qr = account_of(client, account_id)["qr"]
            scanned = client.post("/sim/scan", json={"qr": qr, "phone": PHONE})
            assert scanned.status_code == 200, scanned.text

            connected = doc.wait_status("connected")
            assert connected["accountId"] == account_id and connected["name"] == "Desk"
            assert connected["phone"] == connected["phoneE164"] == PHONE
            assert connected["waJid"] == "40712555001@s.whatsapp.net"
            assert connected["qrCode"] is None and connected["lastError"] is None
            assert connected["phase"] == "Connected"
            assert isinstance(connected["createdAt"], datetime)
            assert isinstance(connected["updatedAt"], datetime)
            assert connected["worker"]["service"] == "wafleet-standalone"
            assert connected["worker"]["version"] and connected["worker"]["instanceId"]

            assert client.post(f"/api/whatsapp/disconnect/{account_id}").status_code == 200
            stopped = doc.wait_status("disconnected")
            assert stopped["lastError"] == "suspended on request"

            deleted = client.delete(f"/api/whatsapp/accounts/{account_id}")
            assert deleted.status_code == 200, deleted.text
            gone = doc.wait_status("deleted")
            assert gone["accountId"] == account_id and gone["qrCode"] is None
            assert gone["updatedAt"] >= connected["updatedAt"]

            again = client.post("/api/whatsapp/add-account", json={"phone": PHONE})
            assert again.status_code == 200, again.text
            assert again.json()["account"]["id"] == account_id  # the phone names the account
            doc.wait_status("qr_ready")

            # Each of these was waited for above, so the listener saw it. (Versions written
            # in quick succession, such as the first "connecting", may reach a listener as
            # one snapshot: a listener sees the latest state, not every write.)
            seen = doc.statuses()
            expected = ["qr_ready", "connected", "disconnected", "deleted", "qr_ready"]
            assert in_order(seen, expected), seen
        finally:
            doc.close()
    code, _ = standalone.stop()
    assert code == 0
    log = standalone.log_path.read_text(errors="replace") if standalone.log_path else ""
    assert "accounts mirror: write failed" not in log, log[-3000:]
    assert PHONE not in log and PHONE.lstrip("+") not in log
