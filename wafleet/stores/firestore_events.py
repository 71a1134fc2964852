"""The event log on Firestore: ``events/{eventId}`` and ``event_heads/{accountId}``.

Writes go through :class:`~wafleet.stores.firestore_seq.Sequencer` (the cause, its events
and the head in one commit). Reads:

- the log order is (``loggedAt``, ``seq``, document id): ``loggedAt`` is the commit time
  of the write that logged the event, so a page read now never has an event committed
  later before its last one; the events of one commit (one account's) share it and follow
  their seq; commits of two accounts at the same time are ordered by seq, then id (any
  order that keeps each account's seq order will do). ``after`` is a ``start_after``
  cursor on that event's snapshot;
- with exactly one account (and ``after`` one of its events, or none) the order is its
  ``seq`` (the same order: seqs are given in commit order);
- several accounts are queried 30 to a query (``in``; fewer when the types are filtered
  too: the product of the two lists is at most 30), and the queries' pages merged.

Old events go by the TTL policy on ``expiresAt`` (:meth:`FirestoreEventLog.prune_events`
does nothing); the heads stay, so an account's seq goes on where it was.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from google.cloud.firestore import AsyncClient, FieldFilter, Query
from google.cloud.firestore_v1.async_collection import AsyncCollectionReference
from google.cloud.firestore_v1.async_query import AsyncQuery
from google.cloud.firestore_v1.field_path import FieldPath

from wafleet.events.model import EVENT_TYPES, Event
from wafleet.stores.base import EventQuery, UnknownEvent
from wafleet.stores.firestore_codec import EPOCH, EVENTS, event_from, to_datetime
from wafleet.stores.firestore_io import Snapshot
from wafleet.stores.firestore_seq import Plan, Reads, Request, Sequencer, Writes, chunks

logger = logging.getLogger(__name__)

MAX_DISJUNCTIONS = 30  # Firestore's limit on the values of the `in` filters of one query
ACCOUNT_CONCURRENCY = 16  # accounts written at once by one append_events


def _weigh(event: Event) -> tuple[int, int]:
    """Writes and (about) bytes an event adds to a commit."""
    return 1, len(json.dumps(event.data, default=str)) + 512


LOG_ORDER = ("loggedAt", "seq", FieldPath.document_id())


def _order_key(snap: Snapshot) -> tuple[datetime, int, str]:
    data = snap.to_dict() or {}
    return to_datetime(data.get("loggedAt"), EPOCH), int(data.get("seq") or 0), snap.id


def in_log_order(
    base: AsyncQuery | AsyncCollectionReference, direction: str = Query.ASCENDING
) -> AsyncQuery:
    """``base`` in log order (or its reverse): an index on its filters, then these fields."""
    first, *rest = LOG_ORDER
    query: AsyncQuery = base.order_by(first, direction=direction)
    for field_path in rest:
        query = query.order_by(field_path, direction=direction)
    return query


def _event(snap: Snapshot) -> Event:
    return event_from(snap.id, snap.to_dict() or {})


class FirestoreEventLog:
    """The EventLog half of :class:`~wafleet.stores.firestore_messages.FirestoreMessageStore`."""

    def __init__(self, client: AsyncClient, seq: Sequencer) -> None:
        self._client = client
        self._seq = seq
        self._collection = client.collection(EVENTS)

    # --- writes ------------------------------------------------------------------------

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        """Each account's events in one commit (or a few), the accounts concurrently;
        returned as logged, in the order given, without the ids already logged."""
        by_account: dict[str, list[Event]] = {}
        for event in events:
            by_account.setdefault(event.account_id, []).append(event)
        gate = asyncio.Semaphore(ACCOUNT_CONCURRENCY)

        async def account(account_id: str, batch: list[Event]) -> list[Event]:
            logged: list[Event] = []
            async with gate:
                for run in chunks(batch, _weigh):
                    logged += await self._append(account_id, run)
            return logged

        results = await asyncio.gather(
            *(account(a, batch) for a, batch in by_account.items()), return_exceptions=True
        )
        done: dict[str, Event] = {}
        for result in results:
            if isinstance(result, BaseException):
                raise result
            done.update((event.id, event) for event in result)
        return [done.pop(event.id) for event in events if event.id in done]

    async def _append(self, account_id: str, batch: list[Event]) -> list[Event]:
        def decide(reads: Reads, writes: Writes) -> Plan[None]:
            return Plan(None, list(batch))

        request = Request(account_id, event_ids=[e.id for e in batch])
        _, logged = await self._seq.commit(request, decide)
        return logged

    # --- reads -------------------------------------------------------------------------

    async def get_event(self, event_id: str) -> Event | None:
        snap = await self._collection.document(event_id).get()
        return _event(snap) if snap.exists else None

    async def latest_event(self) -> Event | None:
        query = in_log_order(self._collection, Query.DESCENDING).limit(1)
        found = [snap async for snap in query.stream()]
        return _event(found[0]) if found else None

    async def events_after(self, account_id: str, seq: int, limit: int) -> list[Event]:
        if limit <= 0:
            return []
        query = (
            self._collection.where(filter=FieldFilter("accountId", "==", account_id))
            .where(filter=FieldFilter("seq", ">", seq))
            .order_by("seq")
            .limit(limit)
        )
        return [_event(snap) async for snap in query.stream()]

    async def list_events(self, query: EventQuery) -> list[Event]:
        after: Snapshot | None = None
        if query.after is not None:
            after = await self._collection.document(query.after).get()
            if not after.exists:
                raise UnknownEvent(query.after)
        accounts, types = query.account_ids, query.types
        if query.limit <= 0 or (accounts is not None and not accounts):
            return []
        if types is not None and not types:
            return []
        wanted_types = None if types is None or set(EVENT_TYPES) <= types else sorted(types)
        if accounts is not None and len(accounts) == 1:
            [account_id] = accounts
            after_account = None if after is None else (after.to_dict() or {}).get("accountId")
            if after is None or after_account == account_id:
                return await self._account_page(account_id, wanted_types, after, query.limit)
        return await self._log_page(accounts, wanted_types, after, query.limit)

    @staticmethod
    def _typed(query: AsyncQuery, types: list[str] | None) -> AsyncQuery:
        return query if types is None else query.where(filter=FieldFilter("type", "in", types))

    async def _account_page(
        self, account_id: str, types: list[str] | None, after: Snapshot | None, limit: int
    ) -> list[Event]:
        """One account in seq order (an index on accountId, type, seq)."""
        query = self._typed(
            self._collection.where(filter=FieldFilter("accountId", "==", account_id)), types
        )
        if after is not None:
            seq = int((after.to_dict() or {}).get("seq") or 0)
            query = query.where(filter=FieldFilter("seq", ">", seq))
        query = query.order_by("seq").limit(limit)
        return [_event(snap) async for snap in query.stream()]

    async def _log_page(
        self,
        accounts: frozenset[str] | None,
        types: list[str] | None,
        after: Snapshot | None,
        limit: int,
    ) -> list[Event]:
        """Log order, merged from one query per group of accounts."""
        ordered = in_log_order(self._collection)
        groups: list[list[str] | None] = [None]
        if accounts is not None:
            ids = sorted(accounts)
            size = MAX_DISJUNCTIONS // (len(types) if types else 1)
            groups = [ids[i : i + size] for i in range(0, len(ids), size)]
        queries = []
        for group in groups:
            query = self._typed(ordered, types)
            if group is not None:
                query = query.where(filter=FieldFilter("accountId", "in", group))
            if after is not None:
                query = query.start_after(after)
            queries.append(query.limit(limit))

        async def page(query: AsyncQuery) -> list[Snapshot]:
            return [snap async for snap in query.stream()]

        pages = await asyncio.gather(*(page(q) for q in queries))
        merged = heapq.merge(*pages, key=_order_key)
        return [_event(snap) for _, snap in zip(range(limit), merged, strict=False)]

    async def prune_events(self, before: datetime) -> int:
        """Nothing: Firestore's TTL policy on ``expiresAt`` drops old events."""
        return 0
