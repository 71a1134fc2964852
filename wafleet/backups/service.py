"""SessionBackups over any BackupStorage: snapshot, compress, encrypt, chunk, commit, prune.

A backup writes all chunks of a new generation first, then makes it current with
one conditional write of the manifest, then deletes the chunks of other
generations. A crash before the manifest write leaves the previous generation
current (its chunks untouched); leftovers are pruned by the next backup.
Generations are ``max(previous + 1, unix milliseconds)``: increasing, and unique
even if two writers raced (the loser's manifest write fails, see BackupStorage).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from wafleet.backups import snapshot
from wafleet.backups.base import (
    BackupConflictError,
    BackupCorruptError,
    BackupInfo,
    BackupKeyError,
    BackupStorage,
    BackupTooOld,
    Manifest,
)
from wafleet.backups.crypto import BackupKey, associated_data, seal, unseal
from wafleet.core.models import utcnow

logger = logging.getLogger(__name__)

CHUNK_SIZE = 512 * 1024  # Firestore documents are limited to 1 MiB


def _now_ms() -> datetime:
    """Milliseconds, as both storages keep it."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class SessionBackupService:
    """Implements :class:`~wafleet.backups.base.SessionBackups`.

    ``key`` is called when a key is needed (it raises BackupKeyError naming the
    setting when none is configured): a restore with no backup stored needs none.
    """

    def __init__(
        self,
        storage: BackupStorage,
        key: Callable[[], BackupKey],
        *,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.storage = storage
        self._key_source = key
        self._key: BackupKey | None = None
        self._chunk_size = chunk_size
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self) -> BackupKey:
        if self._key is None:
            self._key = self._key_source()
        return self._key

    def _lock(self, account_id: str) -> asyncio.Lock:
        return self._locks.setdefault(account_id, asyncio.Lock())

    async def backup(self, account_id: str, path: Path) -> BackupInfo | None:
        key = self.key()
        async with self._lock(account_id):
            image = await asyncio.to_thread(snapshot.take_snapshot, path)
            if image is None:
                return None
            digest = hashlib.sha256(image).hexdigest()
            current, version = await self.storage.read_manifest(account_id)
            if current is not None and (current.sha256, current.key_id) == (digest, key.key_id):
                return BackupInfo(current, written=False)
            previous = current.generation if current is not None else 0
            generation = max(previous + 1, time.time_ns() // 1_000_000)
            aad = associated_data(account_id, generation, key.key_id)
            compressed = await asyncio.to_thread(snapshot.compress, image)
            nonce, sealed = await asyncio.to_thread(seal, key, compressed, aad)
            size = self._chunk_size
            chunks = [sealed[i : i + size] for i in range(0, len(sealed), size)]
            await self.storage.write_chunks(account_id, generation, chunks)
            manifest = Manifest(
                account_id=account_id,
                generation=generation,
                key_id=key.key_id,
                nonce=nonce,
                chunk_count=len(chunks),
                chunk_size=size,
                size=len(image),
                compressed_size=len(compressed),
                encrypted_size=len(sealed),
                sha256=digest,
                updated_at=_now_ms(),
            )
            if not await self.storage.commit(account_id, manifest, version):
                raise BackupConflictError(
                    f"another backup of {account_id} was written meanwhile; this one was dropped"
                )
            try:
                await self.storage.prune(account_id, manifest)
            except Exception:
                logger.warning("old backup chunks of %s not deleted yet", account_id, exc_info=True)
            return BackupInfo(manifest, written=True)

    async def restore_if_missing(self, account_id: str, path: Path) -> bool:
        async with self._lock(account_id):
            if not await asyncio.to_thread(snapshot.is_missing, path):
                return False
            manifest, _ = await self.storage.read_manifest(account_id)
            if manifest is None:
                return False
            image = await self._open(manifest)
            restored = await asyncio.to_thread(snapshot.place, path, image)
            if restored:
                logger.info(
                    "session of %s restored from backup generation %d",
                    account_id,
                    manifest.generation,
                )
            return restored

    async def restore_generation(self, account_id: str, path: Path, at_least: int) -> int:
        async with self._lock(account_id):
            manifest, _ = await self.storage.read_manifest(account_id)
            if manifest is None or manifest.generation < at_least:
                found = "none" if manifest is None else f"generation {manifest.generation}"
                raise BackupTooOld(
                    f"the session backup of {account_id} is {found}, older than the "
                    f"generation {at_least} its handoff needs"
                )
            image = await self._open(manifest)
            await asyncio.to_thread(snapshot.replace, path, image)
            logger.info(
                "session of %s restored from handed-over generation %d",
                account_id,
                manifest.generation,
            )
            return manifest.generation

    async def _open(self, manifest: Manifest) -> bytes:
        what = f"the session backup of {manifest.account_id} (generation {manifest.generation})"
        key = self.key()
        if manifest.key_id != key.key_id:
            raise BackupKeyError(
                f"{what} was written with key id {manifest.key_id!r}, but the configured key "
                f"is {key.key_id!r} (WAFLEET_BACKUP_KEY_ID): configure that key in "
                "WAFLEET_BACKUP_KEY or WAFLEET_BACKUP_KEY_FILE; the local session was left "
                "untouched"
            )
        chunks = await self.storage.read_chunks(
            manifest.account_id, manifest.generation, manifest.chunk_count
        )
        sealed = b"".join(chunks)
        if len(sealed) != manifest.encrypted_size:
            raise BackupCorruptError(
                f"{what} has {len(sealed)} bytes, its manifest says {manifest.encrypted_size}"
            )
        aad = associated_data(manifest.account_id, manifest.generation, manifest.key_id)
        compressed = await asyncio.to_thread(unseal, key, manifest.nonce, sealed, aad, what)
        image = await asyncio.to_thread(snapshot.decompress, compressed, manifest.size)
        if hashlib.sha256(image).hexdigest() != manifest.sha256:
            raise BackupCorruptError(f"{what} does not match its checksum")
        await asyncio.to_thread(snapshot.check_database, image)
        return image

    async def delete(self, account_id: str) -> None:
        async with self._lock(account_id):
            await self.storage.delete_manifest(account_id)
            await self.storage.prune(account_id, None)

    async def close(self) -> None:
        await self.storage.close()
