"""Backups in a local directory, for standalone mode: ``{root}/{accountId}/``.

Same format as in Firestore: ``manifest.json`` (the current generation) and
``chunks/{generation}-{n}.bin``. The manifest is replaced by ``os.replace`` under
an exclusive lock file, after checking it is still the one read before the
backup (its generation), so a generation becomes current atomically. Useful when
``root`` is on another disk than the sessions (a mounted volume), or to move
sessions between machines; in standalone mode it is off unless a key is set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from wafleet.backups.base import (
    SCHEMA_VERSION,
    BackupCorruptError,
    Manifest,
    Version,
    manifest_fields,
    manifest_from_fields,
)
from wafleet.core.models import iso, parse_iso

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CHUNK = re.compile(r"^(\d+)-(\d+)\.bin$")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class LocalBackupStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, account_id: str) -> Path:
        if not _SAFE_ID.fullmatch(account_id):
            raise ValueError(f"unsafe account id for a backup directory: {account_id!r}")
        return self.root / account_id

    @contextlib.contextmanager
    def _locked(self, account_id: str) -> Iterator[Path]:
        directory = self._dir(account_id)
        (directory / "chunks").mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield directory

    def _read(self, account_id: str) -> Manifest | None:
        path = self._dir(account_id) / "manifest.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        if data.get("schemaVersion") != SCHEMA_VERSION:
            return None
        try:
            updated_at = parse_iso(str(data["updatedAt"]))
            assert updated_at is not None
            return manifest_from_fields(data, base64.b64decode(data["nonce"]), updated_at)
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupCorruptError(f"{path}: bad manifest ({exc})") from None

    async def read_manifest(self, account_id: str) -> tuple[Manifest | None, Version]:
        manifest = await asyncio.to_thread(self._read, account_id)
        return manifest, None if manifest is None else manifest.generation

    def _write_chunks(self, account_id: str, generation: int, chunks: Sequence[bytes]) -> None:
        with self._locked(account_id) as directory:
            for index, data in enumerate(chunks):
                _write_atomic(directory / "chunks" / f"{generation}-{index}.bin", data)

    async def write_chunks(self, account_id: str, generation: int, chunks: Sequence[bytes]) -> None:
        await asyncio.to_thread(self._write_chunks, account_id, generation, chunks)

    def _read_chunks(self, account_id: str, generation: int, count: int) -> list[bytes]:
        chunks = self._dir(account_id) / "chunks"
        try:
            return [(chunks / f"{generation}-{i}.bin").read_bytes() for i in range(count)]
        except FileNotFoundError as exc:
            raise BackupCorruptError(f"a chunk of the backup is missing: {exc.filename}") from None

    async def read_chunks(self, account_id: str, generation: int, count: int) -> list[bytes]:
        return await asyncio.to_thread(self._read_chunks, account_id, generation, count)

    def _commit(self, account_id: str, manifest: Manifest, expected: Version) -> bool:
        with self._locked(account_id) as directory:
            current = self._read(account_id)
            if (None if current is None else current.generation) != expected:
                return False
            fields = manifest_fields(manifest) | {
                "nonce": base64.b64encode(manifest.nonce).decode(),
                "updatedAt": iso(manifest.updated_at),
            }
            _write_atomic(directory / "manifest.json", json.dumps(fields, indent=1).encode())
            return True

    async def commit(self, account_id: str, manifest: Manifest, expected: Version) -> bool:
        return await asyncio.to_thread(self._commit, account_id, manifest, expected)

    def _prune(self, account_id: str, keep: Manifest | None) -> int:
        removed = 0
        with self._locked(account_id) as directory:
            for chunk in (directory / "chunks").iterdir():
                match = _CHUNK.fullmatch(chunk.name)
                if match is not None and keep is not None:
                    generation, index = int(match[1]), int(match[2])
                    if generation == keep.generation and index < keep.chunk_count:
                        continue
                chunk.unlink(missing_ok=True)
                removed += 1
        return removed

    async def prune(self, account_id: str, keep: Manifest | None) -> int:
        return await asyncio.to_thread(self._prune, account_id, keep)

    def _delete_manifest(self, account_id: str) -> None:
        with self._locked(account_id) as directory:
            (directory / "manifest.json").unlink(missing_ok=True)

    async def delete_manifest(self, account_id: str) -> None:
        await asyncio.to_thread(self._delete_manifest, account_id)

    async def close(self) -> None:
        return None
