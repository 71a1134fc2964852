"""Backups as stored in Firestore (wa_sessions), the legacy documents there, and the factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.cloud.firestore import AsyncClient

from support.backups import KEY, KEY_B64, make_session, rows_of
from support.firestore import FirestoreEmulator
from wafleet.backups.base import BackupKeyError
from wafleet.backups.factory import open_backups
from wafleet.backups.firestore_storage import FirestoreBackupStorage
from wafleet.backups.local_storage import LocalBackupStorage
from wafleet.backups.service import SessionBackupService
from wafleet.core.settings import Settings

ACCOUNT = "wa-aaaaaaaaaaaaaaaaaaaa"


@pytest.mark.firestore
async def test_documents_and_legacy_backups(firestore_client: AsyncClient, tmp_path: Path) -> None:
    legacy = {"files": {"creds.json": "{}"}, "schemaVersion": 2}
    await firestore_client.document(f"wa_sessions/{ACCOUNT}").set(legacy)
    backups = SessionBackupService(FirestoreBackupStorage(firestore_client), lambda: KEY)
    target = tmp_path / "volume" / "s.db"
    assert not await backups.restore_if_missing(ACCOUNT, target)  # Baileys files: not ours
    assert not target.exists()

    session = make_session(tmp_path / "s.db", rows=400, blob=4096)
    info = await backups.backup(ACCOUNT, session)
    assert info is not None
    doc = (await firestore_client.document(f"wa_sessions/{ACCOUNT}").get()).to_dict()
    assert doc is not None and "files" not in doc  # the legacy document was replaced
    assert doc["schemaVersion"] == 3 and doc["keyId"] == "k1"
    assert doc["generation"] == info.manifest.generation and doc["sha256"] == info.manifest.sha256
    assert {"size", "compressedSize", "encryptedSize", "chunkCount", "updatedAt"} <= set(doc)
    chunks = firestore_client.collection(f"wa_sessions/{ACCOUNT}/chunks")
    names = sorted([snap.id async for snap in chunks.stream()])
    assert names == sorted(f"{info.manifest.generation}-{n}" for n in range(doc["chunkCount"]))
    async for snap in chunks.stream():
        data = snap.to_dict() or {}
        assert len(data["data"]) <= 512 * 1024 < 1 << 20  # well under the 1 MiB document limit
    assert await backups.restore_if_missing(ACCOUNT, target)
    assert rows_of(target) == rows_of(session)


@pytest.mark.firestore
async def test_open_backups_for_firestore_needs_a_key(
    firestore_emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    firestore_emulator.clear()
    settings = Settings(store="firestore", firestore_project=firestore_emulator.project)
    backups = open_backups(settings)
    assert backups is not None
    try:
        with pytest.raises(BackupKeyError, match="WAFLEET_BACKUP_KEY"):
            await backups.backup(ACCOUNT, make_session(tmp_path / "s.db"))
        assert not await backups.restore_if_missing(ACCOUNT, tmp_path / "r.db")
    finally:
        await backups.close()


def test_open_backups_in_standalone(tmp_path: Path) -> None:
    assert open_backups(Settings(data_dir=tmp_path)) is None  # no key: off
    backups = open_backups(Settings(data_dir=tmp_path, backup_key=KEY_B64))
    assert isinstance(backups, SessionBackupService)
    assert isinstance(backups.storage, LocalBackupStorage)
    assert backups.storage.root == tmp_path / "backups"
    with pytest.raises(BackupKeyError, match="WAFLEET_BACKUP_KEY is not valid base64"):
        open_backups(Settings(data_dir=tmp_path, backup_key="nope!"))
