"""Writes that log events on Firestore: the cause, its events and the account's head, atomically.

Every write that logs events for an account is one atomic commit of

- the cause (message documents, an outbox item, an incident, a message status),
- one ``events/{id}`` document per event, with seq ``head + 1, head + 2, ...``,
- ``event_heads/{accountId}`` moved to the last seq given,

decided from one read of the documents it depends on (the head, the cause's documents, the
events' own documents: an id already logged is dropped and takes no seq). Each write of
the commit carries a precondition on that read: ``update_time`` for a document that was
there, "does not exist" for one that was not. If any of them changed in between (another
pod, the API, logged on the same account), the whole commit fails and the write starts
over from a fresh read. So writers of one account serialize on its head document: its seq
goes 1, 2, 3, ... with no gap and no repeat, and a cause is never stored without its
events (nor the other way round).

Why not a read-write transaction: the Firestore emulator (and production, under
contention) locks what a transaction reads, and two transactions that read one head and
then write it wait for each other until the lock times out (measured on the emulator:
four concurrent transactions on one head took 7 to 11 s, "Transaction lock timeout").
The conditional commit takes no locks: a loser retries at once, and writers of one account
in one process take turns on a local lock first, so only other processes ever conflict.

``loggedAt`` (``SERVER_TIMESTAMP``) is the commit time: commits of one account are
serialized by the head, so their times increase with seq, and the log order of the whole
database is (``loggedAt``, ``seq``, document id) (:mod:`wafleet.stores.firestore_events`).
The reads and the commit are built from raw protobuf (:mod:`wafleet.stores.firestore_pb`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

from google.api_core import exceptions
from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient
from google.cloud.firestore_v1.async_document import AsyncDocumentReference

from wafleet.events.model import Event
from wafleet.stores.firestore_codec import EVENT_HEADS, EVENTS, event_doc, ms
from wafleet.stores.firestore_io import CAS_ATTEMPTS, StoreError
from wafleet.stores.firestore_pb import Commit, Doc, get_docs

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_WRITES = 500  # per commit (Firestore's limit)
MAX_COMMIT_BYTES = 6 << 20  # what callers keep a commit under (the request limit is 10 MiB)
_CONFLICTS = (
    exceptions.FailedPrecondition,  # a document changed since it was read
    exceptions.AlreadyExists,  # one was created meanwhile
    exceptions.NotFound,  # one was deleted meanwhile
    exceptions.Aborted,  # contention
)


class Reads:
    """The documents one attempt decides on, by path."""

    def __init__(self, docs: Mapping[str, Doc]) -> None:
        self._docs = docs

    def get(self, ref: AsyncDocumentReference) -> Doc:
        return self._docs[ref.path]

    def data(self, ref: AsyncDocumentReference) -> dict[str, Any] | None:
        """The document's fields (those read), None when it does not exist."""
        doc = self.get(ref)
        return doc.fields if doc.exists else None

    def logged(self, event_id: str) -> bool:
        """Whether an event with this id is in the log (it was read with the others)."""
        doc = self._docs.get(f"{EVENTS}/{event_id}")
        return doc is not None and doc.exists


class Writes:
    """The cause's writes of one attempt, each conditional on what was read."""

    def __init__(self, client: AsyncClient, reads: Reads) -> None:
        self._reads = reads
        self.batch = Commit(client)

    @property
    def count(self) -> int:
        return len(self.batch)

    def create(self, ref: AsyncDocumentReference, fields: Mapping[str, Any]) -> None:
        self.batch.create(ref, fields)

    def update(self, ref: AsyncDocumentReference, fields: Mapping[str, Any]) -> None:
        """Update top-level fields of a document that was read (and exists), if it is still
        as it was read."""
        doc = self._reads.get(ref)
        assert doc.update_time is not None, "update() of a document that was not there"
        self.batch.update(ref, fields, doc.update_time)

    def put(self, ref: AsyncDocumentReference, fields: Mapping[str, Any]) -> None:
        """``create`` if it did not exist when read, else ``update``."""
        if self._reads.get(ref).exists:
            self.update(ref, fields)
        else:
            self.create(ref, fields)


@dataclass
class Plan(Generic[R]):
    """What one attempt decided: its result, and the events to log (their seq is given
    on commit; an event whose id is logged already is dropped).

    ``guard``: the writes depend on events *not* being logged (an outbound message stored
    with the receipts logged so far): the commit then also writes the head, conditional
    on its version (only ``touchedAt``, so that the version changes: Firestore keeps the
    version of a write that changes nothing), so that an event the account logs meanwhile
    fails this commit, and a writer that read the head before this commit fails its own;
    either is then decided again on what the other wrote."""

    result: R
    events: list[Event] = field(default_factory=list)
    guard: bool = False


Decide = Callable[[Reads, Writes], Plan[R]]


@dataclass(frozen=True)
class Read:
    """Documents an attempt reads; ``fields``: only these fields of them (a smaller answer
    to decode), None: the whole documents."""

    refs: Sequence[AsyncDocumentReference]
    fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Request:
    """What a write of ``account_id`` is decided on: ``reads``, the account's head, and the
    documents of ``event_ids`` (the ids it may log).

    ``new_ids``: ids it may log that are taken as not logged without a read (their cause's
    own documents, read in ``reads``, did not exist: an inbound message's); should one be
    there after all, its creation fails the commit and the next attempt reads them too."""

    account_id: str
    reads: Sequence[Read] = ()
    event_ids: Sequence[str] = ()
    new_ids: Sequence[str] = ()


class Sequencer:
    """Commits the writes that log events (see the module docstring); one per store.

    ``retention`` sets ``expiresAt`` (the TTL policy's field) of every event logged.
    Listeners (:meth:`on_logged`) are called in the event loop after each commit that
    logged an event.
    """

    def __init__(self, client: AsyncClient, retention: timedelta) -> None:
        self._client = client
        self._retention = retention
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._listeners: list[Callable[[], None]] = []

    @property
    def retention(self) -> timedelta:
        return self._retention

    def on_logged(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                logger.exception("an event log listener failed; the others are called")

    def _lock(self, account_id: str) -> asyncio.Lock:
        lock = self._locks.get(account_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[account_id] = lock
        return lock

    def head_ref(self, account_id: str) -> AsyncDocumentReference:
        ref: AsyncDocumentReference = self._client.collection(EVENT_HEADS).document(account_id)
        return ref

    def event_ref(self, event_id: str) -> AsyncDocumentReference:
        ref: AsyncDocumentReference = self._client.collection(EVENTS).document(event_id)
        return ref

    def _groups(self, request: Request, *, presumed: bool = False) -> list[Read]:
        """The reads of ``request`` (with its presumed-new events: ``presumed``)."""
        ids = [*request.event_ids, *(request.new_ids if presumed else ())]
        checked = [self.head_ref(request.account_id), *map(self.event_ref, ids)]
        return [Read(checked, ("seq",)), *request.reads]

    async def _read(self, groups: Sequence[Read]) -> Reads:
        """One round trip: the documents of each field mask in one request, all at once."""
        by_mask: dict[tuple[str, ...] | None, dict[str, AsyncDocumentReference]] = {}
        for group in groups:
            refs = by_mask.setdefault(group.fields, {})
            refs.update((ref.path, ref) for ref in group.refs)
        answers = await asyncio.gather(
            *(get_docs(self._client, list(refs.values()), mask) for mask, refs in by_mask.items())
        )
        return Reads({doc.path: doc for answer in answers for doc in answer})

    async def prefetch(self, requests: Sequence[Request]) -> Reads:
        """What ``requests`` read, in one round trip: their commits may be decided on it."""
        return await self._read([g for request in requests for g in self._groups(request)])

    async def commit(
        self, request: Request, decide: Decide[R], *, prefetched: Reads | None = None
    ) -> tuple[R, list[Event]]:
        """Read what ``request`` names (the first attempt may use ``prefetched``, read
        earlier: the preconditions catch what changed since), let ``decide`` plan the write,
        commit it atomically; start over when something read changed meanwhile. Returns the
        result and the events logged."""
        account_id = request.account_id
        presumed = False
        async with self._lock(account_id):
            for attempt in range(CAS_ATTEMPTS):
                if attempt == 0 and prefetched is not None:
                    read = prefetched
                else:
                    read = await self._read(self._groups(request, presumed=presumed))
                writes = Writes(self._client, read)
                plan = decide(read, writes)
                logged = self._log(account_id, plan.events, read, writes)
                if plan.guard and not logged and writes.count:
                    # A write that changes nothing keeps the version: touchedAt changes it.
                    head = read.data(self.head_ref(account_id)) or {}
                    fields = {"seq": head.get("seq") or 0, "touchedAt": SERVER_TIMESTAMP}
                    writes.put(self.head_ref(account_id), fields)
                if writes.count == 0:
                    return plan.result, []
                try:
                    await writes.batch.commit()
                except _CONFLICTS as exc:
                    logger.debug("account %s: write conflicted (%s); again", account_id, exc)
                    presumed = presumed or isinstance(exc, exceptions.AlreadyExists)
                    if attempt:
                        await asyncio.sleep(0.005 * min(attempt, 10) * random.random())
                    continue
                if logged:
                    self._notify()
                return plan.result, logged
        raise StoreError(f"account {account_id}: gave up after {CAS_ATTEMPTS} conflicting writes")

    def _log(
        self, account_id: str, events: Sequence[Event], reads: Reads, writes: Writes
    ) -> list[Event]:
        """Add the events not logged yet, with the next seqs, and the head, to ``writes``."""
        head_ref = self.head_ref(account_id)
        head = reads.data(head_ref)
        seq = int((head or {}).get("seq") or 0)
        logged: list[Event] = []
        seen: set[str] = set()
        for event in events:
            if event.account_id != account_id:
                raise ValueError(f"event {event.id} is not of account {account_id}")
            if event.id in seen or reads.logged(event.id):
                continue  # a repeat: dropped, takes no seq
            seen.add(event.id)
            seq += 1
            writes.create(self.event_ref(event.id), event_doc(event, seq, self._retention))
            logged.append(event.logged(seq, ms(event.at)))
        if logged:
            fields = {"seq": seq, "at": ms(logged[-1].at), "updatedAt": SERVER_TIMESTAMP}
            writes.put(head_ref, fields)
        return logged


def chunks(items: Sequence[R], weigh: Callable[[R], tuple[int, int]]) -> list[list[R]]:
    """Split ``items`` into runs a commit can hold: ``weigh`` gives an item's writes and
    bytes; a run stays under ``MAX_WRITES`` (one kept for the head) and ``MAX_COMMIT_BYTES``."""
    runs: list[list[R]] = []
    current: list[R] = []
    writes = size = 0
    for item in items:
        item_writes, item_size = weigh(item)
        full = writes + item_writes > MAX_WRITES - 1 or size + item_size > MAX_COMMIT_BYTES
        if current and full:
            runs.append(current)
            current, writes, size = [], 0, 0
        current.append(item)
        writes += item_writes
        size += item_size
    if current:
        runs.append(current)
    return runs
