"""The legacy Firestore data: accounts and wa_sessions read, threads readable afterwards.

The emulator holds what the legacy server wrote: ``accounts`` documents, ``wa_sessions``
backups (``schemaVersion: 2``, a ``files`` map of the Baileys files; one account's values
base64-encoded), and threads with messages. ``migrate-legacy --firestore`` (no folder)
creates the accounts; a real standalone process on the same Firestore then answers under
the legacy ids, and the legacy documents are as they were.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from google.cloud.firestore import Client

from support.firestore import FirestoreEmulator, firestore_emulator
from support.migrate_cli import migrate, results
from support.process import Standalone, wait_until

if TYPE_CHECKING:
    from migration.conftest import LegacyFixture

pytestmark = [pytest.mark.migration, pytest.mark.firestore, pytest.mark.e2e]

__all__ = ["firestore_emulator"]

KEY = base64.b64encode(bytes(range(32))).decode()
CONTACT = "40799111222@s.whatsapp.net"
LOGGED_OUT = "account_prod_" + "1" * 32
DELETED = "account_prod_" + "2" * 32
T0 = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)


def phone_of(jid: str) -> str:
    return "+" + jid.split("@", maxsplit=1)[0].split(":", maxsplit=1)[0]


def legacy_documents(db: Client, legacy: LegacyFixture) -> None:
    for n, account in enumerate(legacy.accounts):
        me = account.expected["me"]
        files = {p.name: p.read_text() for p in sorted(account.folder.iterdir())}
        if n == 1:  # some backups hold each file base64-encoded
            files = {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}
        db.document(f"wa_sessions/{account.account_id}").set(
            {"files": files, "updatedAt": T0, "schemaVersion": 2}
        )
        db.document(f"accounts/{account.account_id}").set(
            {
                "accountId": account.account_id,
                "name": f"Shop {n}",
                "phone": phone_of(me["id"])[3:],  # as typed, local
                "phoneE164": phone_of(me["id"]),
                "status": "connected",
                "waJid": me["id"],
                "createdAt": T0,
                "updatedAt": T0,
            }
        )
        thread = f"{account.account_id}__{CONTACT}"
        db.document(f"threads/{thread}").set(
            {"accountId": account.account_id, "clientJid": CONTACT, "lastMessageAt": T0}
        )
        db.document(f"threads/{thread}/messages/3EB0LEGACY{n}").set(
            {
                "accountId": account.account_id,
                "clientJid": CONTACT,
                "direction": "inbound",
                "body": f"hello from before the move {n}",
                "waMessageId": f"3EB0LEGACY{n}",
                "status": "delivered",
                "tsClient": "2026-11-30T09:30:00.000Z",
                "tsServer": T0,
                "createdAt": T0,
            }
        )
    db.document(f"accounts/{LOGGED_OUT}").set(
        {"name": "Logged out", "phoneE164": "+40712345699", "status": "needs_qr"}
    )
    db.document(f"accounts/{DELETED}").set(
        {"name": "Gone", "phoneE164": "+40712345698", "status": "deleted"}
    )


def snapshot(db: Client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("wa_sessions", "threads"):
        for doc in db.collection(name).stream():
            out[f"{name}/{doc.id}"] = doc.to_dict()
    return out


@pytest.fixture
def emulator(firestore_emulator: FirestoreEmulator) -> Iterator[FirestoreEmulator]:
    firestore_emulator.clear()
    yield firestore_emulator


def test_legacy_firestore_moves_over_and_stays_readable_under_legacy_ids(
    legacy: LegacyFixture, emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    db = Client(project=emulator.project)
    legacy_documents(db, legacy)
    before = snapshot(db)
    env = {
        "FIRESTORE_EMULATOR_HOST": emulator.host,
        "WAFLEET_FIRESTORE_PROJECT": emulator.project,
    }
    data = tmp_path / "data"

    done = migrate("--firestore", "--data-dir", str(data), "--json", env=env)
    assert done.returncode == 3, done.stderr  # one account is left for a normal link
    outcome = results(done)
    for account in legacy.accounts:
        assert outcome[account.account_id]["outcome"] == "migrated"
        assert outcome[account.account_id]["source"] == "firestore backup"
        store = data / "sessions" / f"{account.account_id}.db"
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as s:
            [(jid,)] = s.execute("SELECT jid FROM whatsmeow_device").fetchall()
        assert jid == account.expected["me"]["id"]
    assert outcome[LOGGED_OUT]["outcome"] == "left for link"
    assert outcome[DELETED]["outcome"] == "skipped"
    assert snapshot(db) == before  # the legacy documents were only read

    proc = Standalone(
        data_dir=data,
        env={
            **env,
            "WAFLEET_STORE": "firestore",
            "WAFLEET_BACKUP_KEY": KEY,
            "WAFLEET_ACCOUNTS_MIRROR_DELAY": "0.2",
        },
    )
    proc.start()
    try:
        with proc.client() as client:
            listed = client.get("/api/whatsapp/accounts").json()["accounts"]
            shown = {a["id"]: a for a in listed}
            assert set(shown) == {a.account_id for a in legacy.accounts} | {LOGGED_OUT}
            for n, account in enumerate(legacy.accounts):
                assert shown[account.account_id]["name"] == f"Shop {n}"
                assert shown[account.account_id]["phone"] == phone_of(account.expected["me"]["id"])
                response = client.get(
                    "/api/whatsapp/messages", params={"accountId": account.account_id}
                )
                [thread] = response.json()["threads"]
                assert thread["id"] == f"{account.account_id}__{CONTACT}"
                assert [m["body"] for m in thread["messages"]] == [
                    f"hello from before the move {n}"
                ]

            def mirrored() -> bool:  # wafleet now keeps the accounts documents current
                docs = [db.document(f"accounts/{a.account_id}").get() for a in legacy.accounts]
                return all((d.to_dict() or {}).get("phase") for d in docs)

            wait_until("the accounts documents taken over", mirrored, 20)
        after = snapshot(db)
        for account in legacy.accounts:  # the legacy backups stay for a rollback
            key = f"wa_sessions/{account.account_id}"
            assert after[key] == before[key]
    finally:
        proc.kill()
