"""The outbox on SQLite, and the receipts of what it sent: queued -> sending -> sent | failed |
ambiguous, each change an outside reader sees logged as ``message.status`` in the same
transaction (:func:`wafleet.stores.sqlite_events.log_events`).

'sending' is a claim, internal: :func:`claim_next` and :func:`mark_retry` (back to 'queued',
which the outside never stopped seeing) log nothing. A write whose status equals the stored
one logs nothing either. Functions that log return the events they logged, so the store
can wake its listeners after the commit.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from wafleet.core.models import OutboxItem, OutboxStatus, utcnow
from wafleet.events.model import (
    RECEIPT_RANK,
    Event,
    MessageStatus,
    receipt_event,
    status_event,
    status_event_id,
)
from wafleet.stores.base import INTERRUPTED_ERROR
from wafleet.stores.sqlite_db import insert, parse_ts, transaction, ts
from wafleet.stores.sqlite_events import event_logged, log_events

logger = logging.getLogger(__name__)


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


def get_outbox(conn: sqlite3.Connection, item_id: str) -> OutboxItem | None:
    row = conn.execute("SELECT * FROM outbox WHERE id = ?", (item_id,)).fetchone()
    return _row_to_outbox(row) if row is not None else None


def enqueue(conn: sqlite3.Connection, item: OutboxItem) -> tuple[OutboxItem, bool, list[Event]]:
    """The stored item, whether it is new, and its 'queued' event (none for a repeat)."""
    with transaction(conn):
        row = conn.execute(
            "SELECT * FROM outbox WHERE accountId = ? AND idempotencyKey = ?",
            (item.account_id, item.idempotency_key),
        ).fetchone()
        if row is not None:
            return _row_to_outbox(row), False, []
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
        stored = get_outbox(conn, item.id)
        assert stored is not None
        logged = log_events(conn, [status_event(stored, "queued")])
    return stored, True, logged


def claim_next(conn: sqlite3.Connection, account_id: str, now: datetime) -> OutboxItem | None:
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
        return get_outbox(conn, row["id"])


def _not_updated(item_id: str, current: OutboxItem | None) -> None:
    state = current.status if current is not None else "unknown"
    logger.warning("outbox item %s not updated: its status is %s", item_id, state)


def mark_sent(
    conn: sqlite3.Connection, item_id: str, provider_message_id: str, at: datetime
) -> list[Event]:
    """To 'sent' from any status but 'sent' (WhatsApp's word beats 'ambiguous'), logged."""
    with transaction(conn):
        current = get_outbox(conn, item_id)
        if current is None or current.status == "sent":
            _not_updated(item_id, current)
            return []
        conn.execute(
            "UPDATE outbox SET status = 'sent', providerMessageId = ?, error = NULL,"
            " updatedAt = ? WHERE id = ?",
            (provider_message_id, ts(at), item_id),
        )
        sent = replace(current, provider_message_id=provider_message_id)
        return log_events(conn, [status_event(sent, "sent", at=at)])


def mark_retry(
    conn: sqlite3.Connection, item_id: str, error: str, next_attempt_at: datetime
) -> None:
    """Back to 'queued' with the attempt counted; only from 'sending'. Logs nothing: to the
    outside the item was queued all along."""
    changed = conn.execute(
        "UPDATE outbox SET status = 'queued', attemptCount = attemptCount + 1, error = ?,"
        " nextAttemptAt = ?, updatedAt = ? WHERE id = ? AND status = 'sending'",
        (error, ts(next_attempt_at), ts(utcnow()), item_id),
    ).rowcount
    if changed == 0:
        _not_updated(item_id, get_outbox(conn, item_id))


def mark_final(
    conn: sqlite3.Connection, item_id: str, status: MessageStatus, error: str
) -> list[Event]:
    """'failed' or 'ambiguous' over anything but 'sent'; logged when the status changes."""
    with transaction(conn):
        current = get_outbox(conn, item_id)
        if current is None or current.status == "sent":
            _not_updated(item_id, current)
            return []
        conn.execute(
            "UPDATE outbox SET status = ?, error = ?, updatedAt = ? WHERE id = ?",
            (status, error, ts(utcnow()), item_id),
        )
        if current.status == status:
            return []  # the error is refreshed; the status, all the outside sees, is not new
        return log_events(conn, [status_event(current, status, error=error)])


def recover_interrupted(
    conn: sqlite3.Connection, account_ids: Sequence[str] | None
) -> tuple[list[str], list[Event]]:
    """Items left in 'sending' become 'ambiguous' (each logged, as :func:`mark_final` would)."""
    where = "status = 'sending'"
    params: list[object] = []
    if account_ids is not None:
        if not account_ids:
            return [], []
        where += f" AND accountId IN ({', '.join('?' * len(account_ids))})"
        params.extend(account_ids)
    with transaction(conn):
        items = [
            _row_to_outbox(r)
            for r in conn.execute(
                f"SELECT * FROM outbox WHERE {where} ORDER BY createdAt, rowid",  # noqa: S608
                params,
            )
        ]
        conn.executemany(
            "UPDATE outbox SET status = 'ambiguous', error = ?, updatedAt = ? WHERE id = ?",
            [(INTERRUPTED_ERROR, ts(utcnow()), item.id) for item in items],
        )
        logged = log_events(
            conn, [status_event(item, "ambiguous", error=INTERRUPTED_ERROR) for item in items]
        )
    return [item.id for item in items], logged


def outbox_depths(conn: sqlite3.Connection, account_ids: Sequence[str]) -> dict[str, int]:
    """One indexed COUNT(*) per account (accountId leads the outbox's index)."""
    depths = {}
    for account_id in account_ids:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE accountId = ? AND status IN ('queued', 'sending')",
            (account_id,),
        ).fetchone()
        depths[account_id] = int(row[0])
    return depths


def pending_accounts(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT accountId FROM outbox WHERE status = 'queued' ORDER BY accountId"
    ).fetchall()
    return [str(r[0]) for r in rows]


# --- receipts --------------------------------------------------------------------------


def _known_rank(conn: sqlite3.Connection, item: OutboxItem, wa_message_id: str) -> int:
    """How far the sent message got: its stored status, or a receipt already logged for it
    (the connector stores the outbound message just after ``mark_sent``: a receipt may
    arrive in between, and the log still remembers it)."""
    row = conn.execute(
        "SELECT status FROM messages WHERE accountId = ? AND waMessageId = ?",
        (item.account_id, wa_message_id),
    ).fetchone()
    rank = RECEIPT_RANK.get(str(row["status"]), 0) if row is not None else RECEIPT_RANK["sent"]
    for status, status_rank in RECEIPT_RANK.items():
        if status_rank > rank and event_logged(
            conn, status_event_id(item.account_id, item.id, status)
        ):
            rank = status_rank
    return rank


def _sent_item(conn: sqlite3.Connection, account_id: str, wa_message_id: str) -> OutboxItem | None:
    row = conn.execute(
        "SELECT * FROM outbox WHERE accountId = ? AND providerMessageId = ?"
        " ORDER BY createdAt, rowid LIMIT 1",
        (account_id, wa_message_id),
    ).fetchone()
    return _row_to_outbox(row) if row is not None else None


def catch_up_receipts(conn: sqlite3.Connection, account_id: str, wa_message_id: str) -> None:
    """An outbound message just stored: give it the receipts logged before it was (in the
    open transaction of its insert)."""
    item = _sent_item(conn, account_id, wa_message_id)
    if item is None:
        return
    rank = _known_rank(conn, item, wa_message_id)
    status = next((s for s, r in RECEIPT_RANK.items() if r == rank), None)
    if status is not None:
        conn.execute(
            "UPDATE messages SET status = ? WHERE accountId = ? AND waMessageId = ?"
            " AND status != ?",
            (status, account_id, wa_message_id, status),
        )


def apply_receipt(
    conn: sqlite3.Connection,
    account_id: str,
    wa_message_id: str,
    status: MessageStatus,
    at: datetime,
) -> Event | None:
    """Move the sent message's status forward (``RECEIPT_RANK``) and log it, in one write."""
    if status not in RECEIPT_RANK:
        raise ValueError(f"a receipt is one of {sorted(RECEIPT_RANK)}, not {status!r}")
    with transaction(conn):
        item = _sent_item(conn, account_id, wa_message_id)
        if item is None:
            return None  # not sent through the outbox
        if RECEIPT_RANK[status] <= _known_rank(conn, item, wa_message_id):
            return None  # a repeat, or a late receipt behind a later one
        conn.execute(
            "UPDATE messages SET status = ? WHERE accountId = ? AND waMessageId = ?",
            (status, account_id, wa_message_id),
        )
        event = receipt_event(
            account_id, wa_message_id, item.to_jid, status, outbox_id=item.id, at=at
        )
        logged = log_events(conn, [event])
    return logged[0] if logged else None
