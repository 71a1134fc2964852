"""Threads and messages on SQLite (the legacy ``threads/{id}/messages/{waMessageId}``).

A new inbound message logs its ``message.inbound`` event in the transaction that stores it,
so a duplicate (already stored) logs nothing and takes no seq. Outbound messages log
nothing here: the outbox logged their 'sent' already (:mod:`wafleet.stores.sqlite_outbox`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import cast

from wafleet.core.ids import thread_id as make_thread_id
from wafleet.core.models import Direction, Message, Thread, utcnow
from wafleet.events.model import Event, inbound_event
from wafleet.stores.sqlite_db import insert, parse_ts, transaction, ts
from wafleet.stores.sqlite_events import log_events
from wafleet.stores.sqlite_outbox import catch_up_receipts


def save_messages(conn: sqlite3.Connection, messages: Sequence[Message]) -> tuple[int, list[Event]]:
    """Store the new messages; return how many were new and the events they logged."""
    now = utcnow()
    created_at = ts(now)
    new = 0
    logged: list[Event] = []
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
                continue  # a duplicate: already counted in its thread, already logged
            new += 1
            # The thread row follows in the same transaction (deferred foreign key).
            conn.execute(
                "INSERT INTO threads (threadId, accountId, clientJid, lastMessageAt)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (threadId) DO UPDATE SET"
                " lastMessageAt = MAX(excluded.lastMessageAt, threads.lastMessageAt)",
                (tid, m.account_id, m.client_jid, ts_client),
            )
            if m.direction == "inbound":
                logged += log_events(conn, [inbound_event(m, at=now)])
            else:  # logged by the outbox; a receipt may have come before this copy
                catch_up_receipts(conn, m.account_id, m.wa_message_id)
    return new, logged


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


def list_threads(
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
