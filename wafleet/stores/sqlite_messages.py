"""Threads, messages, the outbox, incidents and the event log on SQLite.

The legacy Firestore collections as tables, and the event log their writes feed
(:mod:`wafleet.stores.sqlite_events`): every write that logs an event logs it in its own
transaction. The outbox and the receipts live in :mod:`wafleet.stores.sqlite_outbox`.

Datetimes are ISO 8601 UTC text with milliseconds and a Z (``models.iso``), all in
one format, so text order is time order: ``MAX()`` and ``<=`` on them are correct.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import cast

from wafleet.core.models import Incident, Message, OutboxItem, Thread, iso
from wafleet.events.model import Event, MessageStatus, incident_event
from wafleet.stores import sqlite_events, sqlite_outbox, sqlite_threads
from wafleet.stores.base import FINAL_STATUSES, EventQuery
from wafleet.stores.sqlite_db import Migration, SqliteStore, insert, parse_ts, transaction, ts
from wafleet.stores.sqlite_events import log_events

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
    # 2: the event log, and the receipts' lookup of a sent item by WhatsApp's id.
    (
        *sqlite_events.EVENTS_MIGRATION,
        "CREATE INDEX outbox_sent ON outbox (accountId, providerMessageId)",
    ),
)


def _json_default(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else str(value)


# --- incidents -------------------------------------------------------------------------


def _record_incident(conn: sqlite3.Connection, incident: Incident) -> list[Event]:
    details = json.dumps(incident.details, default=_json_default, sort_keys=True)
    values = {"accountId": incident.account_id, "type": incident.type, "details": details}
    with transaction(conn):
        insert(conn, "incidents", values | {"severity": incident.severity, "ts": ts(incident.ts)})
        return log_events(conn, [incident_event(incident)])


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
    """MessageStore on one SQLite file: ``store = await SqliteMessageStore(path).open()``.

    Listeners (:meth:`on_logged`) are called in the event loop once a write that logged
    events has committed, so that a reader they wake finds the events.
    """

    COMPONENT = "messages"
    MIGRATIONS = _MIGRATIONS

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._listeners: list[Callable[[], None]] = []

    def on_logged(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _logged(self, events: Sequence[Event]) -> None:
        """Wake the listeners after a write that logged ``events`` (none: nothing to tell)."""
        if not events:
            return
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                logger.exception("an event log listener failed; the others are called")

    # --- messages and threads ----------------------------------------------------------

    async def save_messages(self, messages: Sequence[Message]) -> int:
        if not messages:
            return 0
        new, logged = await self.db.run(sqlite_threads.save_messages, list(messages))
        self._logged(logged)
        return new

    async def list_threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        return await self.db.run(sqlite_threads.list_threads, account_id, thread_id, limit)

    # --- outbox ------------------------------------------------------------------------

    async def enqueue(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        stored, created, logged = await self.db.run(sqlite_outbox.enqueue, item)
        self._logged(logged)
        return stored, created

    async def get_outbox(self, item_id: str) -> OutboxItem | None:
        return await self.db.run(sqlite_outbox.get_outbox, item_id)

    async def claim_next(self, account_id: str, now: datetime) -> OutboxItem | None:
        return await self.db.run(sqlite_outbox.claim_next, account_id, now)

    async def mark_sent(self, item_id: str, provider_message_id: str, at: datetime) -> None:
        """To 'sent' from any status but 'sent': WhatsApp's word beats 'ambiguous'."""
        self._logged(await self.db.run(sqlite_outbox.mark_sent, item_id, provider_message_id, at))

    async def mark_retry(self, item_id: str, error: str, next_attempt_at: datetime) -> None:
        """Back to 'queued' with the attempt counted; only from 'sending', never re-sends."""
        await self.db.run(sqlite_outbox.mark_retry, item_id, error, next_attempt_at)

    async def mark_final(self, item_id: str, status: str, error: str) -> None:
        """'failed' or 'ambiguous' (ValueError otherwise); a 'sent' item stays sent."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a final outbox status is 'failed' or 'ambiguous', not {status!r}")
        final = cast(MessageStatus, status)
        self._logged(await self.db.run(sqlite_outbox.mark_final, item_id, final, error))

    async def recover_interrupted(self, account_ids: Sequence[str] | None = None) -> list[str]:
        wanted = None if account_ids is None else list(account_ids)
        ids, logged = await self.db.run(sqlite_outbox.recover_interrupted, wanted)
        self._logged(logged)
        if ids:
            logger.warning("%d interrupted outbox sends marked ambiguous", len(ids))
        return ids

    async def pending_accounts(self) -> list[str]:
        return await self.db.run(sqlite_outbox.pending_accounts)

    async def outbox_depths(self, account_ids: Sequence[str]) -> dict[str, int]:
        return await self.db.run(sqlite_outbox.outbox_depths, list(account_ids))

    # --- incidents ---------------------------------------------------------------------

    async def record_incident(self, incident: Incident) -> None:
        self._logged(await self.db.run(_record_incident, incident))

    async def list_incidents(
        self, *, account_id: str | None = None, limit: int = 100
    ) -> list[Incident]:
        """Newest first (not part of the MessageStore protocol)."""
        return await self.db.run(_list_incidents, account_id, limit)

    # --- the event log -----------------------------------------------------------------

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        logged = await self.db.run(sqlite_events.append_events, list(events))
        self._logged(logged)
        return logged

    async def apply_receipt(
        self, account_id: str, wa_message_id: str, status: MessageStatus, at: datetime
    ) -> Event | None:
        """'delivered' or 'read' (the caller maps 'played' to 'read'); 'sent' is accepted and
        never moves anything (every sent message is at least sent)."""
        event = await self.db.run(
            sqlite_outbox.apply_receipt, account_id, wa_message_id, status, at
        )
        self._logged([event] if event is not None else [])
        return event

    async def list_events(self, query: EventQuery) -> list[Event]:
        return await self.db.run(sqlite_events.list_events, query)

    async def get_event(self, event_id: str) -> Event | None:
        return await self.db.run(sqlite_events.get_event, event_id)

    async def latest_event(self) -> Event | None:
        return await self.db.run(sqlite_events.latest_event)

    async def events_after(self, account_id: str, seq: int, limit: int) -> list[Event]:
        return await self.db.run(sqlite_events.events_after, account_id, seq, limit)

    async def prune_events(self, before: datetime) -> int:
        return await self.db.run(sqlite_events.prune_events, before)
