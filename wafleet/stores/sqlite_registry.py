"""The account registry on SQLite (standalone and embedded mode).

One ``accounts`` table, columns named after the legacy Firestore ``accounts``
collection. Datetimes are ISO 8601 UTC text with milliseconds (``models.iso``),
so they sort as text and round-trip to the millisecond.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
from typing import cast

from wafleet.core.models import (
    Account,
    AccountSpec,
    AccountStatus,
    Disconnect,
    LoginMethod,
    iso,
    parse_iso,
    utcnow,
)
from wafleet.core.phases import Phase
from wafleet.stores.sqlite_db import Migration, SqliteStore, insert, transaction

logger = logging.getLogger(__name__)

_MIGRATIONS: tuple[Migration, ...] = (
    (
        """
        CREATE TABLE accounts (
            accountId TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            phone TEXT NOT NULL,
            login TEXT NOT NULL CHECK (login IN ('qr', 'pairingCode')),
            suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1)),
            createdAt TEXT NOT NULL,
            updatedAt TEXT NOT NULL,
            phase TEXT NOT NULL,
            reason TEXT,
            qr TEXT,
            qrExpiresAt TEXT,
            pairingCode TEXT,
            waJid TEXT,
            lastEventAt TEXT,
            lastMessageAt TEXT,
            connectedAt TEXT,
            reconnects INTEGER NOT NULL DEFAULT 0,
            lastDisconnectReason TEXT,
            lastDisconnectCode INTEGER,
            lastDisconnectedAt TEXT
        )
        """,
        "CREATE UNIQUE INDEX accounts_phone ON accounts (phone)",
        "CREATE INDEX accounts_created ON accounts (createdAt, accountId)",
    ),
    (
        # The wafleet name of an account that carries a legacy id (NULL: the same as
        # accountId); session backups are kept under it.
        "ALTER TABLE accounts ADD COLUMN resourceName TEXT",
        "CREATE UNIQUE INDEX accounts_resource ON accounts (resourceName)",
    ),
)

_STATUS_COLUMNS = (
    "updatedAt",
    "phase",
    "reason",
    "qr",
    "qrExpiresAt",
    "pairingCode",
    "waJid",
    "lastEventAt",
    "lastMessageAt",
    "connectedAt",
    "reconnects",
    "lastDisconnectReason",
    "lastDisconnectCode",
    "lastDisconnectedAt",
)
_SPEC_COLUMNS = ("accountId", "name", "phone", "login", "suspended", "createdAt")


class PhoneInUseError(ValueError):
    """Another account already has this phone number."""

    def __init__(self, existing_account_id: str) -> None:
        super().__init__(f"this phone number already belongs to account {existing_account_id}")
        self.existing_account_id = existing_account_id


def _status_values(status: AccountStatus) -> tuple[object, ...]:
    d = status.last_disconnect
    return (
        iso(status.updated_at),
        str(status.phase),
        status.reason,
        status.qr,
        iso(status.qr_expires_at),
        status.pairing_code,
        status.jid,
        iso(status.last_event_at),
        iso(status.last_message_at),
        iso(status.connected_at),
        status.reconnects,
        d.reason if d else None,
        d.code if d else None,
        iso(d.at) if d else None,
    )


def _row_to_account(row: sqlite3.Row) -> Account:
    created_at = parse_iso(row["createdAt"])
    updated_at = parse_iso(row["updatedAt"])
    assert created_at is not None and updated_at is not None  # NOT NULL columns
    disconnected_at = parse_iso(row["lastDisconnectedAt"])
    disconnect = None
    if disconnected_at is not None:
        disconnect = Disconnect(
            reason=row["lastDisconnectReason"] or "",
            code=row["lastDisconnectCode"],
            at=disconnected_at,
        )
    spec = AccountSpec(
        id=row["accountId"],
        phone=row["phone"],
        name=row["name"],
        login=cast(LoginMethod, row["login"]),
        suspended=bool(row["suspended"]),
        created_at=created_at,
        resource_name=row["resourceName"] or "",
    )
    status = AccountStatus(
        phase=Phase(row["phase"]),
        reason=row["reason"],
        qr=row["qr"],
        qr_expires_at=parse_iso(row["qrExpiresAt"]),
        pairing_code=row["pairingCode"],
        jid=row["waJid"],
        last_event_at=parse_iso(row["lastEventAt"]),
        last_message_at=parse_iso(row["lastMessageAt"]),
        connected_at=parse_iso(row["connectedAt"]),
        reconnects=int(row["reconnects"]),
        last_disconnect=disconnect,
        updated_at=updated_at,
    )
    return Account(spec=spec, status=status)


def _get(conn: sqlite3.Connection, account_id: str) -> Account | None:
    row = conn.execute("SELECT * FROM accounts WHERE accountId = ?", (account_id,)).fetchone()
    return _row_to_account(row) if row is not None else None


def _create(conn: sqlite3.Connection, spec: AccountSpec) -> tuple[Account, bool]:
    with transaction(conn):
        existing = _get(conn, spec.id)
        if existing is not None:
            return existing, False
        other = conn.execute(
            "SELECT accountId FROM accounts WHERE phone = ?", (spec.phone,)
        ).fetchone()
        if other is not None:
            raise PhoneInUseError(other["accountId"])
        spec_values = (spec.id, spec.name, spec.phone, spec.login, int(spec.suspended))
        status = AccountStatus(updated_at=utcnow())
        values = (*spec_values, iso(spec.created_at), *_status_values(status))
        row = dict(zip((*_SPEC_COLUMNS, *_STATUS_COLUMNS), values, strict=True))
        if spec.legacy_id is not None:
            row["resourceName"] = spec.resource_name
        insert(conn, "accounts", row, "ON CONFLICT (accountId) DO NOTHING")
        created = _get(conn, spec.id)
    assert created is not None
    logger.info("account %s created", spec.id)
    return created, True


def _list(conn: sqlite3.Connection) -> list[Account]:
    rows = conn.execute("SELECT * FROM accounts ORDER BY createdAt, accountId").fetchall()
    return [_row_to_account(row) for row in rows]


def _set_suspended(conn: sqlite3.Connection, account_id: str, suspended: bool) -> Account | None:
    with transaction(conn):
        conn.execute(
            "UPDATE accounts SET suspended = ? WHERE accountId = ?", (int(suspended), account_id)
        )
        return _get(conn, account_id)


def _update_status(conn: sqlite3.Connection, account_id: str, status: AccountStatus) -> bool:
    assignments = ", ".join(f"{column} = ?" for column in _STATUS_COLUMNS)
    cursor = conn.execute(
        f"UPDATE accounts SET {assignments} WHERE accountId = ?",  # noqa: S608 (fixed columns)
        (*_status_values(status), account_id),
    )
    return cursor.rowcount > 0


def _delete(conn: sqlite3.Connection, account_id: str) -> bool:
    cursor = conn.execute("DELETE FROM accounts WHERE accountId = ?", (account_id,))
    return cursor.rowcount > 0


class SqliteRegistry(SqliteStore):
    """AccountRegistry on one SQLite file: ``reg = await SqliteRegistry(path).open()``."""

    COMPONENT = "registry"
    MIGRATIONS = _MIGRATIONS

    async def create(self, spec: AccountSpec) -> tuple[Account, bool]:
        """Insert ``spec`` unless its id exists; raise PhoneInUseError for a taken phone."""
        return await self.db.run(_create, spec)

    async def get(self, account_id: str) -> Account | None:
        return await self.db.run(_get, account_id)

    async def set_suspended(self, account_id: str, suspended: bool) -> Account | None:
        return await self.db.run(_set_suspended, account_id, suspended)

    async def update_status(self, account_id: str, status: AccountStatus) -> bool:
        return await self.db.run(_update_status, account_id, status)

    async def delete(self, account_id: str) -> bool:
        deleted = await self.db.run(_delete, account_id)
        if deleted:
            logger.info("account %s deleted", account_id)
        return deleted

    # Last: the method's name shadows the builtin inside the class body.
    async def list(self) -> builtins.list[Account]:
        """All accounts, oldest first (by createdAt, then id)."""
        return await self.db.run(_list)
