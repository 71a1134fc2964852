"""Session backups: what the connector calls, what a storage provides, the manifest, errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

SCHEMA_VERSION = 3  # the legacy server's wa_sessions documents are version 2 (Baileys files)
FORMAT = "sqlite3-backup+zlib+aes-256-gcm"


class BackupError(RuntimeError):
    """A backup could not be written or restored."""


class BackupKeyError(BackupError):
    """The backup key is missing, malformed, or does not open the backup."""


class BackupCorruptError(BackupError):
    """A stored backup is incomplete or does not match its manifest."""


class BackupConflictError(BackupError):
    """Another writer made a backup of the same account at the same time."""


class BackupTooOld(BackupError):
    """The current backup is older than the generation asked for (a handoff's is not
    committed yet, or was lost): try again later, never run on the older one."""


@dataclass(frozen=True)
class Manifest:
    """The metadata of an account's current backup generation (``wa_sessions/{accountId}``)."""

    account_id: str
    generation: int
    key_id: str
    nonce: bytes
    chunk_count: int
    chunk_size: int
    size: int  # the sqlite snapshot
    compressed_size: int
    encrypted_size: int  # the sum of the chunks' sizes
    sha256: str  # hex digest of the sqlite snapshot
    updated_at: datetime
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT


def manifest_fields(m: Manifest) -> dict[str, Any]:
    """The manifest as stored (the ``wa_sessions/{accountId}`` document's fields)."""
    return {
        "accountId": m.account_id,
        "schemaVersion": m.schema_version,
        "format": m.format,
        "generation": m.generation,
        "keyId": m.key_id,
        "nonce": m.nonce,
        "chunkCount": m.chunk_count,
        "chunkSize": m.chunk_size,
        "size": m.size,
        "compressedSize": m.compressed_size,
        "encryptedSize": m.encrypted_size,
        "sha256": m.sha256,
        "updatedAt": m.updated_at,
    }


def manifest_from_fields(data: Mapping[str, Any], nonce: bytes, updated_at: datetime) -> Manifest:
    """KeyError, TypeError or ValueError when a field is missing or malformed."""
    return Manifest(
        account_id=str(data["accountId"]),
        generation=int(data["generation"]),
        key_id=str(data["keyId"]),
        nonce=nonce,
        chunk_count=int(data["chunkCount"]),
        chunk_size=int(data["chunkSize"]),
        size=int(data["size"]),
        compressed_size=int(data["compressedSize"]),
        encrypted_size=int(data["encryptedSize"]),
        sha256=str(data["sha256"]),
        updated_at=updated_at,
        schema_version=int(data["schemaVersion"]),
        format=str(data["format"]),
    )


@dataclass(frozen=True)
class BackupInfo:
    manifest: Manifest
    written: bool  # False: the session had not changed since the current backup


class SessionBackups(Protocol):
    """What the connector calls: after pairing and periodically, and before opening a session."""

    async def backup(self, account_id: str, path: Path) -> BackupInfo | None:
        """Snapshot, encrypt and store the session file at ``path`` as a new generation.

        None when there is no session file. The new generation becomes current only
        once all of it is stored; an interrupted backup leaves the previous one current.
        Raises BackupKeyError when no key is configured.
        """
        ...

    async def restore_if_missing(self, account_id: str, path: Path) -> bool:
        """Restore the current backup to ``path`` if no session file is there; True if restored.

        Never replaces a session file (only a zero-byte placeholder with no side
        files). Raises BackupKeyError (missing or wrong key) or BackupCorruptError,
        leaving ``path`` untouched.
        """
        ...

    async def restore_generation(self, account_id: str, path: Path, at_least: int) -> int:
        """Replace ``path`` with the current backup, if its generation is ``at_least`` or
        newer; return the generation restored.

        For a session handed over from another shard: the file here (if any) is older than
        the one the other shard backed up when it let the session go, so it is replaced.
        Raises BackupTooOld (no such generation yet), BackupKeyError or BackupCorruptError,
        leaving ``path`` untouched. The session must not be running.
        """
        ...

    async def delete(self, account_id: str) -> None:
        """Forget the account's backups (the account was deleted)."""
        ...

    async def close(self) -> None: ...


Version = object | None
"""A storage's opaque token for the manifest it read, for a conditional commit."""


class BackupStorage(Protocol):
    """Where manifests and chunks live (Firestore in a cluster, a directory in standalone)."""

    async def read_manifest(self, account_id: str) -> tuple[Manifest | None, Version]:
        """The current manifest (None if none usable) and a version token of what was read."""
        ...

    async def write_chunks(
        self, account_id: str, generation: int, chunks: Sequence[bytes]
    ) -> None: ...

    async def read_chunks(self, account_id: str, generation: int, count: int) -> list[bytes]:
        """Chunks 0..count-1 of a generation; BackupCorruptError if one is missing."""
        ...

    async def commit(self, account_id: str, manifest: Manifest, expected: Version) -> bool:
        """Make ``manifest`` current in one write, if the manifest is still ``expected``."""
        ...

    async def prune(self, account_id: str, keep: Manifest | None) -> int:
        """Delete every chunk not of ``keep``'s generation; return how many."""
        ...

    async def delete_manifest(self, account_id: str) -> None: ...

    async def close(self) -> None: ...
