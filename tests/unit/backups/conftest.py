"""Backups under test: the local-directory storage, and Firestore (the official emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.cloud.firestore import AsyncClient

from support.firestore import FirestoreEmulator, firestore_client, firestore_emulator
from wafleet.backups.base import BackupStorage
from wafleet.backups.firestore_storage import FirestoreBackupStorage
from wafleet.backups.local_storage import LocalBackupStorage
from wafleet.stores.firestore_io import close_client

__all__ = ["firestore_client", "firestore_emulator"]


@pytest.fixture(params=["local", pytest.param("firestore", marks=pytest.mark.firestore)])
def storage_kind(request: pytest.FixtureRequest) -> FirestoreEmulator | None:
    if request.param == "local":
        return None
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    emulator.clear()
    return emulator


@pytest.fixture
async def storage(
    storage_kind: FirestoreEmulator | None, tmp_path: Path
) -> AsyncIterator[BackupStorage]:
    if storage_kind is None:
        yield LocalBackupStorage(tmp_path / "backups")
        return
    client = AsyncClient(project=storage_kind.project)
    yield FirestoreBackupStorage(client)
    await close_client(client)
