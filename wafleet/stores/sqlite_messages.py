"""Threads, messages, the outbox and incidents on SQLite (the legacy Firestore collections).

Datetimes are ISO 8601 UTC text with milliseconds and a Z (``models.iso``), all in
one format, so text order is time order: ``MAX()`` and ``<=`` on them are correct.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from wafleet.core.ids import thread_id as make_thread_id
from wafleet.core.models import (
    Direction,
    Incident,
    Message,
    OutboxItem,
    OutboxStatus,
    Thread,
    iso,
    utcnow,
)
from wafleet.stores.base import FINAL_STATUSES, INTERRUPTED_ERROR
from wafleet.stores.sqlite_db import Migration, SqliteStore, insert, parse_ts, transaction, ts

logger = logging.getLogger(__name__)


_MIGRATIONS: tuple[Migration, ...] = (
    (
        """CREATE TABLE threads (
            threadId TEXT PRIMARY KEY, accountId TEXT NOT NULL, clientJid TEXT NOT NULL,
            lastMessageAt TEXT NOT NULL)""",
        "CREATE INDEX threads_recent ON threads (lastMessageAt)",
        "CREATE INDEX threads_account_recent ON threads (accountId, lastMessageAt)",
        """CREATE TABLE messages (
            accountId TEXT NOT NULL, waMessageId TEXT NOT NULL,
            threadId TEXT NOT NULL
                REFERENCES threads (threadId) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
            clientJid TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
            body TEXT NOT NULL, status TEXT NOT NULL, tsClient TEXT NOT NULL,
            tsServer TEXT NOT NULL, createdAt TEXT NOT NULL,
            PRIMARY KEY (accountId, waMessageId))""",
        "CREATE INDEX messages_thread_ts ON messages (threadId, tsClient)",
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY, accountId TEXT NOT NULL, toJid TEXT NOT NULL,
            threadId TEXT NOT NULL, body TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'ambiguous')),
            attemptCount INTEGER NOT NULL DEFAULT 0, nextAttemptAt TEXT NOT NULL,
            idempotencyKey TEXT NOT NULL, providerMessageId TEXT, error TEXT,
            createdAt TEXT NOT NULL, updatedAt TEXT NOT NULL,
            UNIQUE (accountId, idempotencyKey))""",
        "CREATE INDEX outbox_due ON outbox (accountId, status, nextAttemptAt)",
        """CREATE TABLE incidents (
            id INTEGER PRIMARY KEY AUTOINCREMENT, accountId TEXT NOT NULL, type TEXT NOT NULL,
            severity TEXT NOT NULL CHECK (severity IN ('high', 'medium', 'low')),
            details TEXT NOT NULL, ts TEXT NOT NULL)""",
        "CREATE INDEX incidents_account_ts ON incidents (accountId, ts)",
    ),
)


def _json_default(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else str(value)


# --- messages and threads --------------------------------------------------------------


def _save_messages(conn: sqlite3.Connection, messages: Sequence[Message]) -> int:
    created_at = ts(utcnow())
    new = 0
    with transaction(conn):
        for m in messages:
            tid = make_thread_id(m.account_id, m.client_jid)
            ts_client = ts(m.ts_client)
            values = {
                "accountId": m.account_id,
                "waMessageId": m.wa_message_id,
                "threadId": tid,
                "clientJid": m.client_jid,
                "direction": m.direction,
                "body": m.body,
                "status": m.status,
                "tsClient": ts_client,
                "tsServer": ts(m.ts_server),
                "createdAt": created_at,
            }
            dedupe = "ON CONFLICT (accountId, waMessageId) DO NOTHING"
            cursor = insert(conn, "messages", values, dedupe)
            if cursor.rowcount != 1:
                continue  # a duplicate: already counted in its thread
            new += 1
            # The thread row follows in the same transaction (deferred foreign key).
            conn.execute(
                "INSERT INTO threads (threadId, accountId, clientJid, lastMessageAt)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (threadId) DO UPDATE SET"
                " lastMessageAt = MAX(excluded.lastMessageAt, threads.lastMessageAt)",
                (tid, m.account_id, m.client_jid, ts_client),
            )
    return new


def _row_to_message(row: sqlite3.Row) -> Message:
    return Message(
        account_id=row["accountId"],
        client_jid=row["clientJid"],
        direction=cast(Direction, row["direction"]),
        body=row["body"],
        wa_message_id=row["waMessageId"],
        status=row["status"],
        ts_client=parse_ts(row["tsClient"]),
        ts_server=parse_ts(row["tsServer"]),
    )


def _list_threads(
    conn: sqlite3.Connection, account_id: str | None, thread_id: str | None, limit: int
) -> list[Thread]:
    if limit <= 0:
        return []
    where: list[str] = []
    params: list[object] = []
    if account_id is not None:
        where.append("accountId = ?")
        params.append(account_id)
    if thread_id is not None:
        where.append("threadId = ?")
        params.append(thread_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    threads: list[Thread] = []
    with transaction(conn, immediate=False):  # one snapshot for all the reads
        rows = conn.execute(
            f"SELECT * FROM threads {clause}"  # noqa: S608 (fixed fragments, bound values)
            " ORDER BY lastMessageAt DESC, threadId LIMIT ?",
            (*params, limit),
        ).fetchall()
        for row in rows:
            newest = conn.execute(
                "SELECT * FROM messages WHERE threadId = ?"
                " ORDER BY tsClient DESC, rowid DESC LIMIT ?",
                (row["threadId"], limit),
            ).fetchall()
            threads.append(
                Thread(
                    id=row["threadId"],
                    account_id=row["accountId"],
                    client_jid=row["clientJid"],
                    last_message_at=parse_ts(row["lastMessageAt"]),
                    messages=tuple(_row_to_message(r) for r in reversed(newest)),
                )
            )
    return threads


# --- outbox ----------------------------------------------------------------------------


def _row_to_outbox(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        account_id=row["accountId"],
        to_jid=row["toJid"],
        body=row["body"],
        idempotency_key=row["idempotencyKey"],
        status=cast(OutboxStatus, row["status"]),
        attempt_count=int(row["attemptCount"]),
        next_attempt_at=parse_ts(row["nextAttemptAt"]),
        provider_message_id=row["providerMessageId"],
        error=row["error"],
        created_at=parse_ts(row["createdAt"]),
        updated_at=parse_ts(row["updatedAt"]),
    )


def _get_outbox(conn: sqlite3.Connection, item_id: str) -> OutboxItem | None:
    row = conn.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()
    return _row_to_outbox(row) if row is not None else None


def _enqueue(conn: sqlite3.Connection, item: OutboxItem) -> tuple[OutboxItem, bool]:
    with transaction(conn):
        row = conn.execute(
            "SELECT * FROM outbox WHERE accountId = ? AND idempotencyKey = ?",
            (item.account_id, item.idempotency_key),
        ).fetchone()
        if row is not None:
            return _row_to_outbox(row), False
        values = {
            "id": item.id,
            "accountId": item.account_id,
            "toJid": item.to_jid,
            "threadId": item.thread_id,
            "body": item.body,
            "status": item.status,
            "attemptCount": item.attempt_count,
            "nextAttemptAt": ts(item.next_attempt_at),
            "idempotencyKey": item.idempotency_key,
            "providerMessageId": item.provider_message_id,
            "error": item.error,
            "createdAt": ts(item.created_at),
            "updatedAt": ts(item.updated_at),
        }
        insert(conn, "outbox", values)
        stored = _get_outbox(conn, item.id)
    assert stored is not None
    return stored, True


def _claim_next(conn: sqlite3.Connection, account_id: str, now: datetime) -> OutboxItem | None:
    at = ts(now)
    with transaction(conn):
        row = conn.execute(
            "SELECT id FROM outbox WHERE accountId = ? AND status = 'queued'"
            " AND nextAttemptAt <= ? ORDER BY createdAt, rowid LIMIT 1",
            (account_id, at),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE outbox SET status = 'sending', updatedAt = ? WHERE id = ?", (at, row["id"])
        )
        return _get_outbox(conn, row["id"])


def _update(conn: sqlite3.Connection, sql: str, params: tuple[object, ...], item_id: str) -> None:
    if conn.execute(sql, params).rowcount == 0:
        current = _get_outbox(conn, item_id)
        state = current.status if current is not None else "unknown"
        logger.warning("outbox item %s not updated: its status is %s", item_id, state)


def _recover(conn: sqlite3.Connection, account_ids: Sequence[str] | None) -> list[str]:
    where = "status = 'sending'"
    params: list[object] = []
    if account_ids is not None:
        if not account_ids:
            return []
        where += f" AND accountId IN ({', '.join('?' * len(account_ids))})"
        params.extend(account_ids)
    with transaction(conn):
        ids = [
            str(r["id"])
            for r in conn.execute(
                f"SELECT id FROM outbox WHERE {where} ORDER BY createdAt, rowid",  # noqa: S608
                params,
            )
        ]
        conn.executemany(
            "UPDATE outbox SET status = 'ambiguous', error = ?, updatedAt = ? WHERE id = ?",
            [(INTERRUPTED_ERROR, ts(utcnow()), item_id) for item_id in ids],
        )
    return ids


def _pending_accounts(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT accountId FROM outbox WHERE status = 'queued' ORDER BY accountId"
    ).fetchall()
    return [str(r[0]) for r in rows]


# --- incidents -------------------------------------------------------------------------


def _record_incident(conn: sqlite3.Connection, incident: Incident) -> None:
    details = json.dumps(incident.details, default=_json_default, sort_keys=True)
    values = {"accountId": incident.account_id, "type": incident.type, "details": details}
    insert(conn, "incidents", values | {"severity": incident.severity, "ts": ts(incident.ts)})


def _list_incidents(conn: sqlite3.Connection, account_id: str | None, limit: int) -> list[Incident]:
    clause, params = ("WHERE accountId = ?", [account_id]) if account_id is not None else ("", [])
    rows = conn.execute(
        f"SELECT * FROM incidents {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
        (*params, max(limit, 0)),
    ).fetchall()
    return [
        Incident(
            account_id=r["accountId"],
            type=r["type"],
            severity=r["severity"],
            details=json.loads(r["details"]),
            ts=parse_ts(r["ts"]),
        )
        for r in rows
    ]


class SqliteMessageStore(SqliteStore):
    """MessageStore on one SQLite file: ``store = await SqliteMessageStore(path).open()``."""

    COMPONENT = "messages"
    MIGRATIONS = _MIGRATIONS

    async def save_messages(self, messages: Sequence[Message]) -> int:
        if not messages:
            return 0
        return await self.db.run(_save_messages, list(messages))

    async def list_threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        return await self.db.run(_list_threads, account_id, thread_id, limit)

    async def enqueue(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        return await self.db.run(_enqueue, item)

    async def get_outbox(self, item_id: str) -> OutboxItem | None:
        return await self.db.run(_get_outbox, item_id)

    async def claim_next(self, account_id: str, now: datetime) -> OutboxItem | None:
        return await self.db.run(_claim_next, account_id, now)

    async def mark_sent(self, item_id: str, provider_message_id: str, at: datetime) -> None:
        """To 'sent' from any status but 'sent': WhatsApp's word beats 'ambiguous'."""
        await self.db.run(
            _update,
            "UPDATE outbox SET status = 'sent', providerMessageId = ?, error = NULL,"
            " updatedAt = ? WHERE id = ? AND status != 'sent'",
            (provider_message_id, ts(at), item_id),
            item_id,
        )

    async def mark_retry(self, item_id: str, error: str, next_attempt_at: datetime) -> None:
        """Back to 'queued' with the attempt counted; only from 'sending', never re-sends."""
        await self.db.run(
            _update,
            "UPDATE outbox SET status = 'queued', attemptCount = attemptCount + 1, error = ?,"
            " nextAttemptAt = ?, updatedAt = ? WHERE id = ? AND status = 'sending'",
            (error, ts(next_attempt_at), ts(utcnow()), item_id),
            item_id,
        )

    async def mark_final(self, item_id: str, status: str, error: str) -> None:
        """'failed' or 'ambiguous' (ValueError otherwise); a 'sent' item stays sent."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a final outbox status is 'failed' or 'ambiguous', not {status!r}")
        await self.db.run(
            _update,
            "UPDATE outbox SET status = ?, error = ?, updatedAt = ?"
            " WHERE id = ? AND status != 'sent'",
            (status, error, ts(utcnow()), item_id),
            item_id,
        )

    async def recover_interrupted(self, account_ids: Sequence[str] | None = None) -> list[str]:
        ids = await self.db.run(_recover, None if account_ids is None else list(account_ids))
        if ids:
            logger.warning("%d interrupted outbox sends marked ambiguous", len(ids))
        return ids

    async def pending_accounts(self) -> list[str]:
        return await self.db.run(_pending_accounts)

    async def record_incident(self, incident: Incident) -> None:
        await self.db.run(_record_incident, incident)

    async def list_incidents(
        self, *, account_id: str | None = None, limit: int = 100
    ) -> list[Incident]:
        """Newest first (not part of the MessageStore protocol)."""
        return await self.db.run(_list_incidents, account_id, limit)
