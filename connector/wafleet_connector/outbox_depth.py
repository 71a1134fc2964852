"""How many outbound messages each account of the shard has waiting: its outbox depth.

Items are queued by other processes too (the API pods), so only the store can say; the
store interface has no count yet, so this reads it the store's own way: SQLite one
indexed ``COUNT(*)`` per account on its worker thread, Firestore one aggregation query
per account (``count()``: billed as one read per 1,000 items counted). Any other store
gives no depth (the series is left out, never a made-up 0).

A scrape asks for a refresh; it runs at most every ``min_interval`` seconds, so several
Prometheus replicas scraping one pod cost one count.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from wafleet.stores.base import MessageStore
from wafleet.stores.sqlite_messages import SqliteMessageStore

logger = logging.getLogger(__name__)

WAITING = ("queued", "sending")
FIRESTORE_WAITING = ["queued", "sending", "processing"]  # "processing": the legacy server's
FIRESTORE_PARALLEL = 10  # count queries at once
MIN_INTERVAL = 5.0


def _sqlite_depths(conn: sqlite3.Connection, account_ids: Sequence[str]) -> dict[str, int]:
    depths = {}
    for account_id in account_ids:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE accountId = ? AND status IN (?, ?)",
            (account_id, *WAITING),
        ).fetchone()
        depths[account_id] = int(row[0])
    return depths


async def _firestore_depths(store: Any, account_ids: Sequence[str]) -> dict[str, int]:
    from google.cloud.firestore import FieldFilter  # noqa: PLC0415 (only with Firestore)

    from wafleet.stores.firestore_codec import OUTBOX  # noqa: PLC0415

    collection = store._client.collection(OUTBOX)
    gate = asyncio.Semaphore(FIRESTORE_PARALLEL)

    async def one(account_id: str) -> tuple[str, int]:
        query = collection.where(filter=FieldFilter("accountId", "==", account_id)).where(
            filter=FieldFilter("status", "in", FIRESTORE_WAITING)
        )
        async with gate:
            results = await query.count(alias="n").get()
        return account_id, int(results[0][0].value)

    return dict(await asyncio.gather(*(one(a) for a in account_ids)))


async def count_waiting(store: MessageStore, account_ids: Sequence[str]) -> dict[str, int] | None:
    """Account id -> items queued or being sent; None when the store cannot count."""
    if isinstance(store, SqliteMessageStore):
        depths: dict[str, int] = await store.db.run(_sqlite_depths, list(account_ids))
        return depths
    firestore = sys.modules.get("wafleet.stores.firestore_messages")  # imported if in use
    if firestore is not None and isinstance(store, firestore.FirestoreMessageStore):
        return await _firestore_depths(store, account_ids)
    return None


class OutboxDepths:
    """The last counted depths, refreshed on demand at most every ``min_interval`` s."""

    def __init__(
        self,
        store: MessageStore,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._min_interval = min_interval
        self._clock = clock
        self._counted_at: float | None = None
        self._depths: dict[str, int] = {}
        self._lock = asyncio.Lock()

    def get(self, account_id: str) -> int | None:
        return self._depths.get(account_id)

    async def refresh(self, account_ids: Sequence[str]) -> None:
        async with self._lock:  # scrapes at once share one count
            now = self._clock()
            if self._counted_at is not None and now - self._counted_at < self._min_interval:
                return
            self._counted_at = now
            try:
                depths = await count_waiting(self._store, account_ids)
            except Exception as exc:
                logger.warning("outbox depths not counted", extra={"error": str(exc)[:200]})
                depths = None  # unknown: no series rather than an old count
            self._depths = depths or {}
