"""Threads and messages on Firestore: ``threads/{accountId}__{clientJid}/messages/{waMessageId}``.

A batch is saved per account, each account's messages in as few commits as the limits
allow (usually one; :class:`~wafleet.stores.firestore_seq.Sequencer`), the accounts
concurrently (at most ``ACCOUNT_CONCURRENCY`` at once). The first commit of every account
is decided on one read of them all (the heads, the messages' documents, their threads: one
round trip for the whole batch); a later commit, or a retry, reads for itself. A commit
writes atomically:

- a ``create`` of each message not stored yet: the message document id is the dedupe
  key, so a message already stored (by an earlier batch or a concurrent writer) is not
  counted and logs nothing;
- one ``message.inbound`` event per new inbound message, with the account's next seqs;
- each touched thread's ``lastMessageAt`` moved forward (never back): to the newest new
  message, and to the stored ``tsClient`` of the batch's duplicates, so that a thread left
  behind (by an older, non-atomic writer) is repaired by a redelivery;
- the head.

A write that finds any of these changed meanwhile starts over from a fresh read, so a
message is stored, counted and logged exactly once. A redelivered batch costs one read
(nothing to write). An outbound message just stored gets the receipts already logged for
it (a receipt may come before the connector stores its copy of the message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from google.cloud.firestore import AsyncClient, FieldFilter, Query
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.field_path import FieldPath

from wafleet.core.models import Message, OutboxItem, Thread, utcnow
from wafleet.events.model import RECEIPT_RANK, inbound_event, inbound_event_id, status_event_id
from wafleet.stores.firestore_codec import (
    MESSAGES,
    THREADS,
    message_doc,
    message_from,
    ms,
    optional_datetime,
    thread_key,
    to_datetime,
)
from wafleet.stores.firestore_io import Snapshot
from wafleet.stores.firestore_receipts import sent_item
from wafleet.stores.firestore_seq import (
    MAX_COMMIT_BYTES,
    MAX_WRITES,
    Plan,
    Read,
    Reads,
    Request,
    Sequencer,
    Writes,
)

ACCOUNT_CONCURRENCY = 16  # accounts of one batch written at once
_MESSAGE_OVERHEAD = 1024  # bytes a message and its event add to a commit beside their text


def _message_ref(client: AsyncClient, m: Message) -> AsyncDocumentReference:
    thread = client.collection(THREADS).document(thread_key(m))
    ref: AsyncDocumentReference = thread.collection(MESSAGES).document(m.wa_message_id)
    return ref


def _thread_ref(client: AsyncClient, m: Message) -> AsyncDocumentReference:
    ref: AsyncDocumentReference = client.collection(THREADS).document(thread_key(m))
    return ref


def _runs(batch: list[Message]) -> list[list[Message]]:
    """Split one account's messages into runs a commit holds: each message and its event
    are two writes, each thread one, the head one (and one spare); the text counts twice."""
    runs: list[list[Message]] = []
    current: list[Message] = []
    threads: set[str] = set()
    size = 0
    for m in batch:
        grown = threads | {thread_key(m)}
        weight = 2 * len(m.body.encode()) + len(m.client_jid) + _MESSAGE_OVERHEAD
        writes = 2 * (len(current) + 1) + len(grown) + 2
        if current and (writes > MAX_WRITES or size + weight > MAX_COMMIT_BYTES):
            runs.append(current)
            current, grown, size = [], {thread_key(m)}, 0
        current.append(m)
        threads = grown
        size += weight
    if current:
        runs.append(current)
    return runs


async def gather_all(tasks: Sequence[Awaitable[int]]) -> list[int]:
    """Run every task to its end, then raise the first failure (none is left running)."""
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, int)]


async def save_messages(client: AsyncClient, seq: Sequencer, messages: Sequence[Message]) -> int:
    unique: dict[tuple[str, str], Message] = {}
    for m in messages:  # the first of a batch's duplicates wins, as in SQLite
        unique.setdefault((m.account_id, m.wa_message_id), m)
    by_account: dict[str, list[Message]] = {}
    for m in unique.values():
        by_account.setdefault(m.account_id, []).append(m)
    if not by_account:
        return 0
    pending = [(a, run) for a, batch in by_account.items() for run in _runs(batch)]
    runs: dict[str, list[_Run]] = {}
    for prepared in await asyncio.gather(*(_prepare(client, a, run) for a, run in pending)):
        runs.setdefault(prepared.account_id, []).append(prepared)
    # The first commit of every account is decided on one read of them all (later ones,
    # and retries, read for themselves: the head has moved by then).
    prefetched = await seq.prefetch([runs[a][0].request for a in runs])
    gate = asyncio.Semaphore(ACCOUNT_CONCURRENCY)

    async def account(account_id: str) -> int:
        async with gate:
            new = 0
            for n, run in enumerate(runs[account_id]):
                new += await run.commit(seq, prefetched if n == 0 else None)
            return new

    counts = await gather_all([account(a) for a in runs])
    return sum(counts)


@dataclass
class _Target:
    account_id: str
    client_jid: str
    at: datetime


def _bump(targets: dict[str, _Target], m: Message, at: datetime) -> None:
    target = targets.get(thread_key(m))
    if target is None:
        targets[thread_key(m)] = _Target(m.account_id, m.client_jid, at)
    elif at > target.at:
        target.at = at


@dataclass
class _Run:
    """Messages of one account that one commit stores (module docstring)."""

    account_id: str
    messages: list[Message]
    items: dict[str, OutboxItem]  # outbound messages' outbox items, by WhatsApp id
    refs: dict[str, AsyncDocumentReference]  # the messages' documents, by WhatsApp id
    threads: dict[str, AsyncDocumentReference]
    request: Request  # what it reads

    async def commit(self, seq: Sequencer, prefetched: Reads | None) -> int:
        new, _ = await seq.commit(self.request, self.decide, prefetched=prefetched)
        return new

    def decide(self, reads: Reads, writes: Writes) -> Plan[int]:
        targets: dict[str, _Target] = {}
        plan = Plan(0)
        now = utcnow()
        for m in self.messages:
            stored = reads.data(self.refs[m.wa_message_id])
            if stored is not None:  # a duplicate: not counted, logs nothing
                if stored.get("tsClient") is not None:
                    _bump(targets, m, to_datetime(stored["tsClient"]))
                continue
            item = self.items.get(m.wa_message_id)
            copy = m
            if item is not None:  # stored as far as the receipts logged for it so far got
                copy = _with_receipts(m, item, reads)
                plan.guard = True
            writes.create(self.refs[m.wa_message_id], message_doc(copy))
            plan.result += 1
            _bump(targets, m, ms(m.ts_client))
            if m.direction == "inbound":
                plan.events.append(inbound_event(m, at=now))
        for key, target in targets.items():
            _advance_thread(writes, reads, self.threads[key], target)
        return plan


async def _prepare(client: AsyncClient, account_id: str, run: list[Message]) -> _Run:
    outbound = [m for m in run if m.direction == "outbound"]
    sent = await asyncio.gather(*(sent_item(client, account_id, m.wa_message_id) for m in outbound))
    items = {m.wa_message_id: i for m, i in zip(outbound, sent, strict=True) if i is not None}
    refs = {m.wa_message_id: _message_ref(client, m) for m in run}
    threads = {thread_key(m): _thread_ref(client, m) for m in run}
    request = Request(
        account_id,
        [
            Read(list(refs.values()), ("tsClient",)),
            Read(list(threads.values()), ("lastMessageAt",)),
        ],
        # Only the receipts of outbound messages are looked up: an inbound message not
        # stored yet has not been logged either (its event is logged with it).
        event_ids=[
            status_event_id(account_id, item.id, status)
            for item in items.values()
            for status in RECEIPT_RANK
        ],
        new_ids=[
            inbound_event_id(account_id, m.wa_message_id) for m in run if m.direction == "inbound"
        ],
    )
    return _Run(account_id, run, items, refs, threads, request)


def _with_receipts(m: Message, item: OutboxItem, reads: Reads) -> Message:
    """The outbound message with the furthest receipt already logged for it, if any."""
    rank = RECEIPT_RANK.get(m.status, 0)
    status = m.status
    for candidate, candidate_rank in RECEIPT_RANK.items():
        if candidate_rank > rank and reads.logged(
            status_event_id(m.account_id, item.id, candidate)
        ):
            rank, status = candidate_rank, candidate
    return m if status == m.status else replace(m, status=status)


def _advance_thread(
    writes: Writes, reads: Reads, ref: AsyncDocumentReference, target: _Target
) -> None:
    """Move the thread's lastMessageAt up to the target, never down."""
    fields = {
        "accountId": target.account_id,
        "clientJid": target.client_jid,
        "lastMessageAt": target.at,
    }
    stored = reads.data(ref)
    if stored is None:
        writes.create(ref, fields)
        return
    current = optional_datetime(stored.get("lastMessageAt"))
    if current is None or current < target.at:
        writes.update(ref, fields)


async def list_threads(
    client: AsyncClient, account_id: str | None, thread_id: str | None, limit: int
) -> list[Thread]:
    if limit <= 0:
        return []
    collection = client.collection(THREADS)
    if thread_id is not None:
        snap = await collection.document(thread_id).get()
        data = snap.to_dict() if snap.exists else None
        if data is None or (account_id is not None and data.get("accountId") != account_id):
            return []
        found = [snap]
    else:
        query = collection.order_by("lastMessageAt", direction=Query.DESCENDING)
        if account_id is not None:
            query = collection.where(filter=FieldFilter("accountId", "==", account_id)).order_by(
                "lastMessageAt", direction=Query.DESCENDING
            )
        query = query.order_by(FieldPath.document_id()).limit(limit)
        found = [snap async for snap in query.stream()]
    return list(await asyncio.gather(*(_thread(snap, limit) for snap in found)))


async def _thread(snap: Snapshot, limit: int) -> Thread:
    data = snap.to_dict() or {}
    query = (
        snap.reference.collection(MESSAGES)
        .order_by("tsClient", direction=Query.DESCENDING)
        .order_by(FieldPath.document_id(), direction=Query.DESCENDING)
        .limit(limit)
    )
    newest = [message_from(m.id, m.to_dict() or {}) async for m in query.stream()]
    account_id, _, client_jid = snap.id.partition("__")
    last = optional_datetime(data.get("lastMessageAt"))
    if last is None:
        last = newest[0].ts_client if newest else to_datetime(None)
    return Thread(
        id=snap.id,
        account_id=str(data.get("accountId", account_id)),
        client_jid=str(data.get("clientJid", client_jid)),
        last_message_at=last,
        messages=tuple(reversed(newest)),
    )
