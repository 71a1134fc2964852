"""Session backups on both storages: round trip, chunks, keys, interrupted writes, no overwrite."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from support.backups import KEY, OTHER_KEY, make_session, rows_of
from wafleet.backups.base import (
    BackupCorruptError,
    BackupError,
    BackupKeyError,
    BackupStorage,
    Manifest,
)
from wafleet.backups.crypto import BackupKey, load_key
from wafleet.backups.local_storage import LocalBackupStorage
from wafleet.backups.service import SessionBackupService
from wafleet.core.settings import Settings

ACCOUNT = "wa-aaaaaaaaaaaaaaaaaaaa"


def service(storage: BackupStorage, key: BackupKey = KEY, **kwargs: Any) -> SessionBackupService:
    return SessionBackupService(storage, lambda: key, **kwargs)


def no_key() -> BackupKey:
    return load_key(Settings())  # raises: no key configured


async def test_round_trip(storage: BackupStorage, tmp_path: Path) -> None:
    session = make_session(tmp_path / "sessions" / f"{ACCOUNT}.db")
    expected = rows_of(session)
    backups = service(storage)
    info = await backups.backup(ACCOUNT, session)
    assert info is not None and info.written
    assert (info.manifest.key_id, info.manifest.chunk_count) == ("k1", 1)
    assert info.manifest.compressed_size < info.manifest.size
    again = await backups.backup(ACCOUNT, session)  # unchanged: nothing rewritten
    assert again is not None and not again.written and again.manifest == info.manifest

    restored = tmp_path / "other-volume" / f"{ACCOUNT}.db"
    assert await backups.restore_if_missing(ACCOUNT, restored)
    assert sorted(p.name for p in restored.parent.iterdir()) == [restored.name]  # no leftovers
    assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    assert rows_of(restored) == expected
    assert await backups.restore_if_missing("wa-nobody", tmp_path / "x.db") is False
    assert not (tmp_path / "x.db").exists()
    assert await backups.backup(ACCOUNT, tmp_path / "missing.db") is None


async def test_a_new_generation_replaces_the_old_one(
    storage: BackupStorage, tmp_path: Path
) -> None:
    session = make_session(tmp_path / "s.db")
    backups = service(storage)
    first = await backups.backup(ACCOUNT, session)
    make_session(session, rows=5)  # the session changed
    second = await backups.backup(ACCOUNT, session)
    assert first is not None and second is not None and second.written
    assert second.manifest.generation > first.manifest.generation
    with pytest.raises(BackupCorruptError, match=r"misses|missing"):  # old chunks are deleted
        await storage.read_chunks(ACCOUNT, first.manifest.generation, 1)
    restored = tmp_path / "r.db"
    assert await backups.restore_if_missing(ACCOUNT, restored)
    assert len(rows_of(restored)) == 15


async def test_a_large_session_is_chunked(storage: BackupStorage, tmp_path: Path) -> None:
    session = make_session(tmp_path / "big.db", rows=600, blob=4096)  # ~2.5 MiB, incompressible
    assert session.stat().st_size > 2 << 20
    backups = service(storage)
    info = await backups.backup(ACCOUNT, session)
    assert info is not None
    m = info.manifest
    assert m.size > 2 << 20 and m.chunk_count >= 5 and m.chunk_size == 512 * 1024
    chunks = await storage.read_chunks(ACCOUNT, m.generation, m.chunk_count)
    assert all(len(c) <= 512 * 1024 for c in chunks) and sum(map(len, chunks)) == m.encrypted_size
    restored = tmp_path / "restored.db"
    assert await backups.restore_if_missing(ACCOUNT, restored)
    assert rows_of(restored) == rows_of(session)


async def test_wrong_or_missing_key_is_an_error_and_touches_nothing(
    storage: BackupStorage, tmp_path: Path
) -> None:
    session = make_session(tmp_path / "s.db")
    assert await service(storage).backup(ACCOUNT, session) is not None
    target = tmp_path / "volume" / "s.db"
    with pytest.raises(BackupKeyError, match=r"WAFLEET_BACKUP_KEY.*not the key"):
        await service(storage, OTHER_KEY).restore_if_missing(ACCOUNT, target)
    assert not target.exists() and not target.parent.exists()
    with pytest.raises(BackupKeyError, match=r"key id 'k1'.*'k2'.*WAFLEET_BACKUP_KEY_ID"):
        await service(storage, BackupKey("k2", KEY.secret)).restore_if_missing(ACCOUNT, target)
    target.parent.mkdir()
    target.touch()  # a zero-byte placeholder stays as it was
    with pytest.raises(BackupKeyError, match="need a key: set WAFLEET_BACKUP_KEY"):
        await SessionBackupService(storage, no_key).restore_if_missing(ACCOUNT, target)
    assert target.stat().st_size == 0 and os.listdir(target.parent) == ["s.db"]
    with pytest.raises(BackupKeyError, match="need a key"):
        await SessionBackupService(storage, no_key).backup(ACCOUNT, session)
    # without a backup stored, a restore needs no key
    assert not await SessionBackupService(storage, no_key).restore_if_missing("wa-new", target)


async def test_restore_never_overwrites_a_session(storage: BackupStorage, tmp_path: Path) -> None:
    session = make_session(tmp_path / "s.db")
    backups = service(storage)
    await backups.backup(ACCOUNT, session)
    local = make_session(tmp_path / "volume" / "s.db", rows=3)
    before = local.read_bytes()
    assert await backups.restore_if_missing(ACCOUNT, local) is False
    assert local.read_bytes() == before
    placeholder = tmp_path / "placeholder.db"  # created empty before the session ever wrote
    placeholder.touch()
    assert await backups.restore_if_missing(ACCOUNT, placeholder)
    assert rows_of(placeholder) == rows_of(session)


class Interrupted(Exception):
    pass


class Crashing:
    """Wraps a storage; dies after writing ``chunks`` chunks, or right before the commit."""

    def __init__(self, inner: BackupStorage, *, chunks: int | None = None) -> None:
        self.inner = inner
        self.chunks = chunks

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def write_chunks(self, account_id: str, generation: int, chunks: Sequence[bytes]) -> None:
        if self.chunks is None:
            await self.inner.write_chunks(account_id, generation, chunks)
            return
        await self.inner.write_chunks(account_id, generation, chunks[: self.chunks])
        raise Interrupted("killed while writing chunks")

    async def commit(self, account_id: str, manifest: Manifest, expected: object) -> bool:
        raise Interrupted("killed before the manifest")


@pytest.mark.parametrize("crash_after", [2, None])
async def test_an_interrupted_backup_leaves_the_previous_generation_current(
    storage: BackupStorage, tmp_path: Path, crash_after: int | None
) -> None:
    session = make_session(tmp_path / "s.db", rows=300, blob=4096)
    backups = service(storage)
    first = await backups.backup(ACCOUNT, session)
    assert first is not None
    expected = rows_of(session)
    make_session(session, rows=200, blob=4096)

    crashing = service(Crashing(storage, chunks=crash_after))  # type: ignore[arg-type]
    with pytest.raises(Interrupted):
        await crashing.backup(ACCOUNT, session)
    current, _ = await storage.read_manifest(ACCOUNT)
    assert current == first.manifest
    restored = tmp_path / "r.db"
    assert await backups.restore_if_missing(ACCOUNT, restored)
    assert rows_of(restored) == expected

    done = await backups.backup(ACCOUNT, session)  # the next backup completes and cleans up
    assert done is not None and done.written
    assert await storage.prune(ACCOUNT, done.manifest) == 0  # nothing else was left


async def test_a_stale_commit_is_refused(storage: BackupStorage, tmp_path: Path) -> None:
    backups = service(storage)
    first = await backups.backup(ACCOUNT, make_session(tmp_path / "s.db"))
    assert first is not None
    _, version = await storage.read_manifest(ACCOUNT)
    second = await backups.backup(ACCOUNT, make_session(tmp_path / "s.db"))
    assert second is not None
    assert not await storage.commit(ACCOUNT, first.manifest, version)  # another pod won
    assert not await storage.commit("wa-other", first.manifest, version)  # none exists there
    assert (await storage.read_manifest(ACCOUNT))[0] == second.manifest


async def test_backup_while_the_session_is_written(storage: BackupStorage, tmp_path: Path) -> None:
    session = make_session(tmp_path / "s.db")
    stop = threading.Event()

    def writer() -> None:
        db = sqlite3.connect(session, timeout=10)
        while not stop.is_set():
            db.execute("INSERT INTO keys (value) VALUES (?)", (os.urandom(500),))
            db.commit()
        db.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        backups = service(storage)
        for _ in range(3):
            assert await backups.backup(ACCOUNT, session) is not None
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
    restored = tmp_path / "r.db"
    assert await backups.restore_if_missing(ACCOUNT, restored)
    assert len(rows_of(restored)) >= 10  # a consistent, committed state


async def test_delete_forgets_the_account(storage: BackupStorage, tmp_path: Path) -> None:
    backups = service(storage)
    await backups.backup(ACCOUNT, make_session(tmp_path / "s.db"))
    await backups.delete(ACCOUNT)
    assert await storage.read_manifest(ACCOUNT) == (None, None)
    assert not await backups.restore_if_missing(ACCOUNT, tmp_path / "r.db")


async def test_chunks_of_another_account_do_not_decrypt(tmp_path: Path) -> None:
    storage = LocalBackupStorage(tmp_path / "backups")
    backups = service(storage)
    await backups.backup(ACCOUNT, make_session(tmp_path / "s.db"))
    shutil.copytree(tmp_path / "backups" / ACCOUNT, tmp_path / "backups" / "wa-b")
    manifest = (tmp_path / "backups" / "wa-b" / "manifest.json").read_text()
    (tmp_path / "backups" / "wa-b" / "manifest.json").write_text(manifest.replace(ACCOUNT, "wa-b"))
    with pytest.raises(BackupKeyError, match="does not decrypt"):
        await backups.restore_if_missing("wa-b", tmp_path / "r.db")
    assert not (tmp_path / "r.db").exists()


async def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    storage = LocalBackupStorage(tmp_path / "backups")
    backups = service(storage)
    info = await backups.backup(ACCOUNT, make_session(tmp_path / "s.db"))
    assert info is not None
    chunk = tmp_path / "backups" / ACCOUNT / "chunks" / f"{info.manifest.generation}-0.bin"
    chunk.write_bytes(chunk.read_bytes()[:-1])
    with pytest.raises(BackupError, match="bytes, its manifest says"):
        await backups.restore_if_missing(ACCOUNT, tmp_path / "r.db")
    with pytest.raises(ValueError, match="unsafe account id"):
        await storage.read_manifest("../escape")
