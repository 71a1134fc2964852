"""The inbound journal: a message is durable on the local volume before it is acknowledged.

``append`` commits the message to a small sqlite file (synchronous=FULL) and
only then returns, so the transport may acknowledge it to WhatsApp. A
forwarder moves journaled messages to the message store in batches and
removes them once stored. A crash between any two steps loses nothing: an
unacknowledged message is redelivered by WhatsApp and dropped as a duplicate
(by message id) by the journal or the store; a journaled message not yet
forwarded is forwarded on the next start.

It also knows how many messages of each account wait in it (``depths``, for the metrics):
counted from the file at start, then kept by ``append`` and the forwarder, in the event
loop, as they commit (this journal is its file's only writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from wafleet.core.models import Message, iso, parse_iso
from wafleet.stores.base import MessageStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

BATCH = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    client_jid TEXT NOT NULL,
    body TEXT NOT NULL,
    ts_client TEXT NOT NULL,
    ts_server TEXT NOT NULL,
    UNIQUE (account_id, wa_id)
)
"""


class InboundJournal:
    def __init__(self, path: Path, store: MessageStore) -> None:
        self.path = path
        self._store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._depths: Counter[str] = Counter()  # account id -> messages waiting here

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(_SCHEMA)
        self._db = db

    def _count_by_account(self) -> Counter[str]:
        assert self._db is not None
        rows = self._db.execute("SELECT account_id, COUNT(*) FROM pending GROUP BY account_id")
        return Counter({str(account_id): int(count) for account_id, count in rows})

    def depths(self) -> Mapping[str, int]:
        """Account id -> messages journaled and not yet in the store."""
        return self._depths

    async def start(self) -> None:
        await self._run(self._open)
        self._depths = await self._run(self._count_by_account)
        self._task = asyncio.create_task(self._forward_loop(), name="journal-forwarder")
        self._wake.set()  # forward what a previous run left behind

    def _append(self, message: Message) -> bool:
        assert self._db is not None
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO pending (account_id, wa_id, client_jid, body, ts_client,"
            " ts_server) VALUES (?, ?, ?, ?, ?, ?)",
            (
                message.account_id,
                message.wa_message_id,
                message.client_jid,
                message.body,
                iso(message.ts_client),
                iso(message.ts_server),
            ),
        )
        return cursor.rowcount == 1

    async def append(self, message: Message) -> bool:
        """Make ``message`` durable; False if it was already journaled (a redelivery)."""
        added: bool = await self._run(self._append, message)
        if added:
            self._depths[message.account_id] += 1
        self._wake.set()
        return added

    def _batch(self) -> list[tuple[int, Message]]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT seq, account_id, wa_id, client_jid, body, ts_client, ts_server"
            " FROM pending ORDER BY seq LIMIT ?",
            (BATCH,),
        ).fetchall()
        batch = []
        for seq, account_id, wa_id, client_jid, body, ts_client, ts_server in rows:
            message = Message(
                account_id=account_id,
                client_jid=client_jid,
                direction="inbound",
                body=body,
                wa_message_id=wa_id,
                status="delivered",
                ts_client=parse_iso(ts_client),  # type: ignore[arg-type]
                ts_server=parse_iso(ts_server),  # type: ignore[arg-type]
            )
            batch.append((seq, message))
        return batch

    def _remove(self, last_seq: int) -> Counter[str]:
        """Delete what was forwarded; how many rows of each account went (a flush running
        beside another may find some gone already: only what this DELETE removed counts)."""
        assert self._db is not None
        rows = self._db.execute(
            "DELETE FROM pending WHERE seq <= ? RETURNING account_id", (last_seq,)
        ).fetchall()
        return Counter(str(account_id) for (account_id,) in rows)

    async def flush(self) -> int:
        """Forward everything journaled to the store now; return how many were forwarded."""
        total = 0
        while True:
            batch: list[tuple[int, Message]] = await self._run(self._batch)
            if not batch:
                return total
            await self._store.save_messages([message for _, message in batch])
            removed: Counter[str] = await self._run(self._remove, batch[-1][0])
            self._depths -= removed  # accounts left with none drop out
            total += len(batch)

    def _count(self) -> int:
        assert self._db is not None
        row = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()
        return int(row[0])

    async def pending(self) -> int:
        count: int = await self._run(self._count)
        return count

    async def _forward_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("forwarding journaled messages failed; retrying in 1 s")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def close(self) -> None:
        """Stop the forwarder, forward what is left (best effort), close the file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception:
            logger.exception("journal kept messages that could not be forwarded at shutdown")
        if self._db is not None:
            await self._run(self._db.close)
        self._executor.shutdown(wait=True)
