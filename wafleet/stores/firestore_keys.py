"""Scoped API keys in Firestore (cluster mode): ``apiKeys/{keyId}``, shared by every API pod.

Fields: ``name``, ``scopes`` (array), ``accountIds`` (array, or null for every
account), ``secretHash`` (SHA-256 hex of the secret; the secret itself is never
stored), ``createdAt``, ``revokedAt`` (null while the key is valid).
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, cast

from google.api_core import exceptions
from google.cloud.firestore import AsyncClient

from wafleet.core.apikeys import ApiKey, Scope
from wafleet.stores.firestore_codec import optional_datetime, to_datetime
from wafleet.stores.firestore_io import close_client

API_KEYS = "apiKeys"


def _doc(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "scopes": sorted(key.scopes),
        "accountIds": None if key.account_ids is None else sorted(key.account_ids),
        "secretHash": key.secret_hash,
        "createdAt": key.created_at,
        "revokedAt": key.revoked_at,
    }


def _key(key_id: str, data: dict[str, Any]) -> ApiKey:
    accounts = data.get("accountIds")
    created = to_datetime(data.get("createdAt"))
    return ApiKey(
        id=key_id,
        name=str(data.get("name", "")),
        scopes=frozenset(cast(list[Scope], list(data.get("scopes") or []))),
        account_ids=None if accounts is None else frozenset(str(a) for a in accounts),
        secret_hash=str(data.get("secretHash", "")),
        created_at=created,
        revoked_at=optional_datetime(data.get("revokedAt")),
    )


class FirestoreKeyStore:
    def __init__(self, client: AsyncClient, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        self._keys = client.collection(API_KEYS)

    async def open(self) -> FirestoreKeyStore:
        return self

    async def close(self) -> None:
        if self._owns_client:
            self._owns_client = False
            await close_client(self._client)

    async def create(self, key: ApiKey) -> None:
        await self._keys.document(key.id).create(_doc(key))

    async def get(self, key_id: str) -> ApiKey | None:
        snap = await self._keys.document(key_id).get()
        data = snap.to_dict() if snap.exists else None
        return None if data is None else _key(key_id, data)

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked (a second revoke keeps the first time); None if unknown."""
        key = await self.get(key_id)
        if key is None:
            return None
        if key.revoked_at is None:
            try:
                await self._keys.document(key_id).update({"revokedAt": at})
            except exceptions.NotFound:
                return None
        return await self.get(key_id)

    async def list(self) -> builtins.list[ApiKey]:
        keys = [_key(snap.id, snap.to_dict() or {}) async for snap in self._keys.stream()]
        return sorted(keys, key=lambda k: (k.created_at, k.id))
