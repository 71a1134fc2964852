"""An account's recent phase changes and incidents, from the event log, newest first.

The log pages oldest first (``EventQuery``), so the newest events of an account are at
its end. The first look at an account reads its retained events once, a page at a time,
and keeps the last ``KEEP``; every later look (the page polls) asks only for what came
after the last event seen. An account's tail is kept per API process, for the accounts
looked at lately (``MAX_ACCOUNTS``).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from wafleet.events.model import Event
from wafleet.stores.base import EventLog, EventQuery, UnknownEvent

HISTORY_TYPES = frozenset({"account.phase", "account.incident"})
KEEP = 50
PAGE = 500
MAX_PAGES = 40  # per look: 20,000 events, far beyond what a week of one account logs
MAX_ACCOUNTS = 256


@dataclass
class _Tail:
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=KEEP))
    after: str | None = None  # the last event read
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class HistoryTails:
    def __init__(self, keep: int = KEEP, max_accounts: int = MAX_ACCOUNTS) -> None:
        self._keep = keep
        self._max = max_accounts
        self._tails: OrderedDict[str, _Tail] = OrderedDict()

    def _tail(self, account_id: str) -> _Tail:
        tail = self._tails.get(account_id)
        if tail is None:
            tail = _Tail(deque(maxlen=self._keep))
            self._tails[account_id] = tail
            while len(self._tails) > self._max:
                self._tails.popitem(last=False)
        self._tails.move_to_end(account_id)
        return tail

    def forget(self, account_id: str) -> None:
        self._tails.pop(account_id, None)

    async def recent(self, log: EventLog, account_id: str) -> list[Event]:
        """The account's latest phase changes and incidents, newest first."""
        tail = self._tail(account_id)
        async with tail.lock:  # two polls of one account read the log once
            for _ in range(MAX_PAGES):
                query = EventQuery(tail.after, frozenset({account_id}), HISTORY_TYPES, PAGE)
                try:
                    page = await log.list_events(query)
                except UnknownEvent:  # the last event seen was pruned: read again
                    tail.events.clear()
                    tail.after = None
                    continue
                tail.events.extend(page)
                if page:
                    tail.after = page[-1].id
                if len(page) < PAGE:
                    break
            return list(reversed(tail.events))
