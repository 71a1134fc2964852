"""Webhooks, their delivery lanes and dead letters on SQLite (see :mod:`wafleet.events.webhooks`).

The tables live in the message store's file (``messages.db``) because the lanes are read
against the event log there: ``due_lanes`` is one query over webhooks x ``event_heads`` x
lanes, and a lane's start and a replay's targets come from ``events``
(:mod:`wafleet.stores.sqlite_lanes`). The store has its own schema component
(``webhooks``); on open it also brings the message store's schema up to date, so that it
may be opened first. Event and account filters are kept as JSON lists (NULL: no filter).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Self

from wafleet.events.model import Event, event_from_body
from wafleet.events.webhooks import Failure, Lane, LaneKey, Webhook
from wafleet.stores import sqlite_lanes
from wafleet.stores.sqlite_db import Migration, SqliteStore, migrate, parse_ts, transaction, ts
from wafleet.stores.sqlite_messages import SqliteMessageStore

logger = logging.getLogger(__name__)

_MIGRATIONS: tuple[Migration, ...] = (
    (
        """CREATE TABLE webhooks (
            id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,
            events TEXT, accountIds TEXT, createdAt TEXT NOT NULL,
            disabledAt TEXT, disabledReason TEXT)""",
        """CREATE TABLE webhook_lanes (
            webhookId TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
            accountId TEXT NOT NULL, cursor INTEGER NOT NULL,
            claim TEXT, claimedBy TEXT, leaseUntil TEXT, nextAttemptAt TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, firstFailureAt TEXT, lastError TEXT,
            PRIMARY KEY (webhookId, accountId))""",
        """CREATE TABLE webhook_failures (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            webhookId TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
            eventId TEXT NOT NULL, event TEXT NOT NULL, attempts INTEGER NOT NULL,
            firstFailureAt TEXT NOT NULL, lastError TEXT NOT NULL, at TEXT NOT NULL)""",
        "CREATE INDEX webhook_failures_recent ON webhook_failures (webhookId, id)",
    ),
)


def _filter(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


def _unfilter(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(str(value) for value in json.loads(text))


def _optional_ts(value: datetime | None) -> str | None:
    return ts(value) if value is not None else None


def _webhook(row: sqlite3.Row) -> Webhook:
    disabled_at = row["disabledAt"]
    return Webhook(
        id=row["id"],
        url=row["url"],
        secret=row["secret"],
        events=_unfilter(row["events"]),
        account_ids=_unfilter(row["accountIds"]),
        created_at=parse_ts(row["createdAt"]),
        disabled_at=parse_ts(disabled_at) if disabled_at is not None else None,
        disabled_reason=row["disabledReason"],
    )


def _create(conn: sqlite3.Connection, hook: Webhook) -> None:
    conn.execute(
        "INSERT INTO webhooks (id, url, secret, events, accountIds, createdAt, disabledAt,"
        " disabledReason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            hook.id,
            hook.url,
            hook.secret,
            _filter(hook.events),
            _filter(hook.account_ids),
            ts(hook.created_at),
            _optional_ts(hook.disabled_at),
            hook.disabled_reason,
        ),
    )


def _get(conn: sqlite3.Connection, webhook_id: str) -> Webhook | None:
    row = conn.execute("SELECT * FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
    return _webhook(row) if row is not None else None


def _list(conn: sqlite3.Connection) -> list[Webhook]:
    rows = conn.execute("SELECT * FROM webhooks ORDER BY createdAt, rowid").fetchall()
    return [_webhook(row) for row in rows]


def _delete(conn: sqlite3.Connection, webhook_id: str) -> bool:
    with transaction(conn):
        conn.execute("DELETE FROM webhook_failures WHERE webhookId = ?", (webhook_id,))
        conn.execute("DELETE FROM webhook_lanes WHERE webhookId = ?", (webhook_id,))
        return bool(conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount)


def _disable(conn: sqlite3.Connection, webhook_id: str, reason: str, at: datetime) -> None:
    """The first disable's time and reason are kept."""
    conn.execute(
        "UPDATE webhooks SET disabledAt = ?, disabledReason = ?"
        " WHERE id = ? AND disabledAt IS NULL",
        (ts(at), reason, webhook_id),
    )


def _failures(conn: sqlite3.Connection, webhook_id: str, limit: int) -> list[Failure]:
    rows = conn.execute(
        "SELECT * FROM webhook_failures WHERE webhookId = ? ORDER BY id DESC LIMIT ?",
        (webhook_id, max(limit, 0)),
    ).fetchall()
    return [
        Failure(
            webhook_id=row["webhookId"],
            event=event_from_body(json.loads(row["event"])),
            attempts=int(row["attempts"]),
            first_failure_at=parse_ts(row["firstFailureAt"]),
            last_error=row["lastError"],
            at=parse_ts(row["at"]),
        )
        for row in rows
    ]


def _replay(conn: sqlite3.Connection, webhook_id: str, after: Event) -> int:
    hook = _get(conn, webhook_id)
    if hook is None:
        return 0
    rewound = sqlite_lanes.replay(conn, hook, after)
    logger.info("webhook %s replayed after %s: %d lanes rewound", webhook_id, after.id, rewound)
    return rewound


class SqliteWebhookStore(SqliteStore):
    """WebhookStore in the message store's SQLite file (``messages.db``).

    ``worker_id`` names this store's lane claims; keep it stable across restarts (a
    restarted worker takes its own claims over at once instead of waiting for the lease).
    """

    COMPONENT = "webhooks"
    MIGRATIONS = _MIGRATIONS

    def __init__(self, path: Path, worker_id: str = "standalone") -> None:
        super().__init__(path)
        self.worker_id = worker_id

    async def open(self) -> Self:
        """Open, and migrate the webhook tables and the event log they are read against."""
        await super().open()
        await self.db.run(migrate, SqliteMessageStore.COMPONENT, SqliteMessageStore.MIGRATIONS)
        return self

    async def create_webhook(self, hook: Webhook) -> None:
        await self.db.run(_create, hook)

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        return await self.db.run(_get, webhook_id)

    async def list_webhooks(self) -> list[Webhook]:
        return await self.db.run(_list)

    async def delete_webhook(self, webhook_id: str) -> bool:
        return await self.db.run(_delete, webhook_id)

    async def disable_webhook(self, webhook_id: str, reason: str, at: datetime) -> None:
        await self.db.run(_disable, webhook_id, reason, at)

    async def due_lanes(self, hooks: Sequence[Webhook], now: datetime, limit: int) -> list[LaneKey]:
        ids = [hook.id for hook in hooks if hook.enabled]
        return await self.db.run(sqlite_lanes.due, ids, self.worker_id, now, limit)

    async def claim_lane(
        self, key: LaneKey, hook: Webhook, now: datetime, lease: timedelta
    ) -> Lane | None:
        return await self.db.run(
            sqlite_lanes.claim, key, hook, worker_id=self.worker_id, now=now, lease=lease
        )

    async def lane_delivered(
        self, lane: Lane, cursor: int, now: datetime, lease: timedelta
    ) -> Lane | None:
        return await self.db.run(sqlite_lanes.delivered, lane, cursor, now, lease)

    async def lane_failed(
        self, lane: Lane, error: str, now: datetime, next_attempt_at: datetime
    ) -> bool:
        return await self.db.run(sqlite_lanes.failed, lane, error, now, next_attempt_at)

    async def lane_dead_letter(
        self, lane: Lane, event: Event, error: str, now: datetime, lease: timedelta
    ) -> Lane | None:
        return await self.db.run(
            sqlite_lanes.dead_letter, lane, event, error=error, now=now, lease=lease
        )

    async def release_lane(self, lane: Lane) -> None:
        await self.db.run(sqlite_lanes.release, lane)

    async def list_failures(self, webhook_id: str, limit: int) -> list[Failure]:
        return await self.db.run(_failures, webhook_id, limit)

    async def replay(self, webhook_id: str, after: Event) -> int:
        """Raises UnknownEvent when ``after`` is no longer in the log (pruned)."""
        return await self.db.run(_replay, webhook_id, after)
