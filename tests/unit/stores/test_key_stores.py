"""The API key stores: SQLite (standalone) and Firestore (cluster, the official emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.cloud.firestore import AsyncClient

from support.firestore import FirestoreEmulator, firestore_emulator
from wafleet.core.apikeys import key_id_of, new_key
from wafleet.stores.base import KeyStore
from wafleet.stores.firestore_io import close_client
from wafleet.stores.firestore_keys import FirestoreKeyStore
from wafleet.stores.sqlite_keys import SqliteKeyStore

__all__ = ["firestore_emulator"]

T0 = datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "sqlite":
        sqlite = await SqliteKeyStore(tmp_path / "keys.db").open()
        yield sqlite
        await sqlite.close()
        return
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    emulator.clear()
    client = AsyncClient(project=emulator.project)
    yield FirestoreKeyStore(client)
    await close_client(client)


async def test_a_key_round_trips_without_its_secret(store: KeyStore) -> None:
    key, secret = new_key("billing app", frozenset({"read", "send"}), frozenset({"wa-a", "wa-b"}))
    await store.create(key)
    found = await store.get(key.id)
    assert found is not None
    assert (found.name, found.scopes, found.account_ids) == (key.name, key.scopes, key.account_ids)
    assert found.matches(secret) and not found.matches(secret[:-1] + "x")
    assert secret not in repr(found) and found.secret_hash != secret
    assert key_id_of(secret) == key.id
    assert await store.get("000000000000") is None


async def test_revoke_is_kept_once_and_listed(store: KeyStore) -> None:
    every, _ = new_key("all accounts", frozenset({"read"}), None)
    other, _ = new_key("ops", frozenset({"manage"}), None)
    await store.create(every)
    await store.create(other)
    revoked = await store.revoke(every.id, T0)
    assert revoked is not None and revoked.revoked_at == T0
    again = await store.revoke(every.id, T0 + timedelta(hours=1))
    assert again is not None and again.revoked_at == T0  # the first revocation stands
    assert await store.revoke("ffffffffffff", T0) is None
    listed = {k.id: k for k in await store.list()}
    assert set(listed) == {every.id, other.id}
    assert listed[every.id].account_ids is None and listed[other.id].revoked_at is None
