"""Backups in Firestore: ``wa_sessions/{accountId}`` and its ``chunks/{generation}-{n}``.

The account's document is the manifest of the current generation; each chunk
document holds up to 512 KiB of ciphertext (documents are limited to 1 MiB).
The manifest is replaced by one write conditional on the version read before the
backup started (``update_time``, or "does not exist"), so a generation becomes
current atomically and only if nobody else committed in between. Documents the
legacy server wrote there (``schemaVersion`` 2, Baileys files) are not usable by
wafleet sessions: they are ignored on restore and replaced by the first backup.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.cloud.firestore import AsyncClient
from google.cloud.firestore_v1.types import common as common_pb

from wafleet.backups.base import (
    SCHEMA_VERSION,
    BackupCorruptError,
    BackupError,
    Manifest,
    Version,
    manifest_fields,
    manifest_from_fields,
)
from wafleet.stores.firestore_codec import to_datetime
from wafleet.stores.firestore_io import (
    ALREADY_EXISTS,
    FAILED_PRECONDITION,
    NOT_FOUND,
    WriteList,
    batch_write,
    close_client,
)

logger = logging.getLogger(__name__)

SESSIONS = "wa_sessions"
CHUNKS = "chunks"


def chunk_id(generation: int, index: int) -> str:
    return f"{generation}-{index}"


class FirestoreBackupStorage:
    def __init__(self, client: AsyncClient, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self._sessions = client.collection(SESSIONS)

    async def read_manifest(self, account_id: str) -> tuple[Manifest | None, Version]:
        snap = await self._sessions.document(account_id).get()
        data = snap.to_dict() if snap.exists else None
        if data is None:
            return None, None
        if data.get("schemaVersion") != SCHEMA_VERSION:
            logger.warning(
                "wa_sessions/%s holds a backup of schema version %s, not %d: not usable, ignored",
                account_id,
                data.get("schemaVersion"),
                SCHEMA_VERSION,
            )
            return None, snap.update_time
        try:
            nonce = bytes(data["nonce"])
            updated_at = to_datetime(data.get("updatedAt"))
            return manifest_from_fields(data, nonce, updated_at), snap.update_time
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupCorruptError(f"wa_sessions/{account_id}: bad manifest ({exc})") from None

    async def write_chunks(self, account_id: str, generation: int, chunks: Sequence[bytes]) -> None:
        collection = self._sessions.document(account_id).collection(CHUNKS)
        writes = WriteList(self._client)
        for index, data in enumerate(chunks):
            doc = {"generation": generation, "index": index, "data": data}
            writes.set(collection.document(chunk_id(generation, index)), doc)
        for status in await batch_write(self._client, writes.writes):
            if not status.ok:
                raise BackupError(f"backup chunk of {account_id} not written: {status.message}")

    async def read_chunks(self, account_id: str, generation: int, count: int) -> list[bytes]:
        collection = self._sessions.document(account_id).collection(CHUNKS)
        refs = [collection.document(chunk_id(generation, i)) for i in range(count)]
        found: dict[str, bytes] = {}
        async for snap in self._client.get_all(refs):
            data = snap.to_dict() if snap.exists else None
            if data is not None and isinstance(data.get("data"), bytes):
                found[snap.id] = data["data"]
        missing = [ref.id for ref in refs if ref.id not in found]
        if missing:
            raise BackupCorruptError(
                f"the session backup of {account_id} misses chunks {', '.join(missing)}"
            )
        return [found[ref.id] for ref in refs]

    async def commit(self, account_id: str, manifest: Manifest, expected: Version) -> bool:
        writes = WriteList(self._client)
        ref = self._sessions.document(account_id)
        if expected is None:
            writes.create(ref, manifest_fields(manifest))
        else:
            writes.set(ref, manifest_fields(manifest))  # replaces the document, legacy fields too
            writes.writes[-1].current_document = common_pb.Precondition(update_time=expected)
        [status] = await batch_write(self._client, writes.writes)
        if status.code in (ALREADY_EXISTS, FAILED_PRECONDITION, NOT_FOUND):
            return False
        if not status.ok:
            raise BackupError(f"backup manifest of {account_id} not written: {status.message}")
        return True

    async def prune(self, account_id: str, keep: Manifest | None) -> int:
        collection = self._sessions.document(account_id).collection(CHUNKS)
        keep_ids = set()
        if keep is not None:
            keep_ids = {chunk_id(keep.generation, i) for i in range(keep.chunk_count)}
        writes = WriteList(self._client)
        async for ref in collection.list_documents():
            if ref.id not in keep_ids:
                writes.delete(ref)
        if not writes.writes:
            return 0
        statuses = await batch_write(self._client, writes.writes)
        return sum(status.ok for status in statuses)

    async def delete_manifest(self, account_id: str) -> None:
        await self._sessions.document(account_id).delete()

    async def close(self) -> None:
        if self._owns_client:
            self._owns_client = False
            await close_client(self._client)
