"""Scoped API keys on SQLite (standalone mode): one ``apiKeys`` table beside the registry."""

from __future__ import annotations

import builtins
import json
import sqlite3
from datetime import datetime
from typing import cast

from wafleet.core.apikeys import ApiKey, Scope
from wafleet.core.models import iso, parse_iso
from wafleet.stores.sqlite_db import Migration, SqliteStore, insert, transaction

_MIGRATIONS: tuple[Migration, ...] = (
    (
        """
        CREATE TABLE apiKeys (
            keyId TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            accountIds TEXT,
            secretHash TEXT NOT NULL,
            createdAt TEXT NOT NULL,
            revokedAt TEXT
        )
        """,
    ),
)


def _row_to_key(row: sqlite3.Row) -> ApiKey:
    created_at = parse_iso(row["createdAt"])
    assert created_at is not None  # NOT NULL
    accounts = row["accountIds"]
    return ApiKey(
        id=row["keyId"],
        name=row["name"],
        scopes=frozenset(cast(list[Scope], json.loads(row["scopes"]))),
        account_ids=None if accounts is None else frozenset(json.loads(accounts)),
        secret_hash=row["secretHash"],
        created_at=created_at,
        revoked_at=parse_iso(row["revokedAt"]),
    )


def _create(conn: sqlite3.Connection, key: ApiKey) -> None:
    row = {
        "keyId": key.id,
        "name": key.name,
        "scopes": json.dumps(sorted(key.scopes)),
        "accountIds": None if key.account_ids is None else json.dumps(sorted(key.account_ids)),
        "secretHash": key.secret_hash,
        "createdAt": iso(key.created_at),
        "revokedAt": iso(key.revoked_at),
    }
    with transaction(conn):
        insert(conn, "apiKeys", row)


def _get(conn: sqlite3.Connection, key_id: str) -> ApiKey | None:
    row = conn.execute("SELECT * FROM apiKeys WHERE keyId = ?", (key_id,)).fetchone()
    return None if row is None else _row_to_key(row)


def _revoke(conn: sqlite3.Connection, key_id: str, at: datetime) -> ApiKey | None:
    with transaction(conn):
        conn.execute(
            "UPDATE apiKeys SET revokedAt = ? WHERE keyId = ? AND revokedAt IS NULL",
            (iso(at), key_id),
        )
        return _get(conn, key_id)


def _list(conn: sqlite3.Connection) -> list[ApiKey]:
    rows = conn.execute("SELECT * FROM apiKeys ORDER BY createdAt, keyId").fetchall()
    return [_row_to_key(row) for row in rows]


class SqliteKeyStore(SqliteStore):
    COMPONENT = "apikeys"
    MIGRATIONS = _MIGRATIONS

    async def create(self, key: ApiKey) -> None:
        await self.db.run(_create, key)

    async def get(self, key_id: str) -> ApiKey | None:
        return await self.db.run(_get, key_id)

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked (once: a second revoke keeps the first time); None if unknown."""
        return await self.db.run(_revoke, key_id, at)

    # Last: the method's name shadows the builtin inside the class body.
    async def list(self) -> builtins.list[ApiKey]:
        return await self.db.run(_list)
