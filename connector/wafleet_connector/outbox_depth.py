"""How many outbound messages each account of the shard has waiting: its outbox depth.

Items are queued by other processes too (the API pods), so only the store can say
(``MessageStore.outbox_depths``: SQLite one indexed ``COUNT(*)`` per account, Firestore
one aggregation query per account). A scrape asks for a refresh; it runs at most every
``min_interval`` seconds, so several Prometheus replicas scraping one pod cost one count,
and a count that fails leaves the series out rather than showing an old one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from wafleet.stores.base import MessageStore

logger = logging.getLogger(__name__)

MIN_INTERVAL = 5.0


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
                depths: dict[str, int] | None = await self._store.outbox_depths(account_ids)
            except Exception as exc:
                logger.warning("outbox depths not counted", extra={"error": str(exc)[:200]})
                depths = None  # unknown: no series rather than an old count
            self._depths = depths or {}
