"""Threads and messages on Firestore: ``threads/{accountId}__{clientJid}/messages/{waMessageId}``.

Saving a batch costs a fixed handful of round trips, whatever its size:

1. one ``BatchWrite`` of ``create`` writes, one per message: the message document
   id is the dedupe key and ``create`` its precondition, so a message already
   stored (by an earlier batch or a concurrent writer) fails alone with
   ``ALREADY_EXISTS`` and is not counted; in parallel, one read of the batch's
   thread documents;
2. only when there were duplicates: one read of them, so a batch replayed after a
   crash between steps 1 and 3 still brings its thread up to date (with the stored
   ``tsClient``, never the duplicate's);
3. one ``BatchWrite`` moving each thread's ``lastMessageAt`` forward, each write
   conditional on the thread being unchanged since step 1 (``update_time``
   precondition, or ``create`` for a new thread); a thread someone else moved in
   between is read again and retried. ``lastMessageAt`` only ever moves forward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from google.cloud.firestore import AsyncClient, FieldFilter, Query
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.field_path import FieldPath

from wafleet.core.models import Message, Thread
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
from wafleet.stores.firestore_io import (
    ALREADY_EXISTS,
    CAS_ATTEMPTS,
    FAILED_PRECONDITION,
    NOT_FOUND,
    Snapshot,
    StoreError,
    WriteList,
    batch_write,
    raise_unexpected,
)


@dataclass
class _Target:
    account_id: str
    client_jid: str
    at: datetime


def _message_ref(client: AsyncClient, m: Message) -> AsyncDocumentReference:
    thread = client.collection(THREADS).document(thread_key(m))
    ref: AsyncDocumentReference = thread.collection(MESSAGES).document(m.wa_message_id)
    return ref


async def _read(client: AsyncClient, refs: Iterable[AsyncDocumentReference]) -> dict[str, Snapshot]:
    refs = list(refs)
    if not refs:
        return {}
    return {snap.reference.path: snap async for snap in client.get_all(refs)}


def _bump(targets: dict[str, _Target], account_id: str, client_jid: str, at: datetime) -> None:
    key = f"{account_id}__{client_jid}"
    target = targets.get(key)
    if target is None:
        targets[key] = _Target(account_id, client_jid, at)
    elif at > target.at:
        target.at = at


async def save_messages(client: AsyncClient, messages: Sequence[Message]) -> int:
    unique: dict[tuple[str, str], Message] = {}
    for m in messages:  # the first of a batch's duplicates wins, as in SQLite
        unique.setdefault((m.account_id, m.wa_message_id), m)
    batch = list(unique.values())
    if not batch:
        return 0
    writes = WriteList(client)
    refs = [_message_ref(client, m) for m in batch]
    for ref, m in zip(refs, batch, strict=True):
        writes.create(ref, message_doc(m))
    thread_refs = {thread_key(m): client.collection(THREADS).document(thread_key(m)) for m in batch}
    statuses, threads = await asyncio.gather(
        batch_write(client, writes.writes), _read(client, thread_refs.values())
    )
    raise_unexpected(statuses, frozenset({ALREADY_EXISTS}))

    targets: dict[str, _Target] = {}
    duplicates: dict[str, Message] = {}
    new = 0
    for ref, m, status in zip(refs, batch, statuses, strict=True):
        if status.ok:
            new += 1
            _bump(targets, m.account_id, m.client_jid, ms(m.ts_client))
        else:
            duplicates[ref.path] = m
    stored = await _read(client, (_message_ref(client, m) for m in duplicates.values()))
    for path, snap in stored.items():
        data = snap.to_dict() if snap.exists else None
        if data is not None and data.get("tsClient") is not None:
            m = duplicates[path]
            _bump(targets, m.account_id, m.client_jid, to_datetime(data["tsClient"]))
    await _advance_threads(client, targets, threads)
    return new


async def _advance_threads(
    client: AsyncClient, targets: dict[str, _Target], prefetched: dict[str, Snapshot]
) -> None:
    """Move each thread's lastMessageAt up to its target, never down."""
    pending = dict(targets)
    snapshots = prefetched
    collection = client.collection(THREADS)
    for _ in range(CAS_ATTEMPTS):
        writes = WriteList(client)
        order: list[str] = []
        for key, target in pending.items():
            ref = collection.document(key)
            snap = snapshots.get(ref.path)
            fields = {
                "accountId": target.account_id,
                "clientJid": target.client_jid,
                "lastMessageAt": target.at,
            }
            if snap is None or not snap.exists:
                writes.create(ref, fields)
            else:
                current = optional_datetime((snap.to_dict() or {}).get("lastMessageAt"))
                if current is not None and current >= target.at:
                    continue
                option = client.write_option(last_update_time=snap.update_time)
                writes.update(ref, fields, option=option)
            order.append(key)
        if not order:
            return
        statuses = await batch_write(client, writes.writes)
        raise_unexpected(statuses, frozenset({ALREADY_EXISTS, FAILED_PRECONDITION, NOT_FOUND}))
        pending = {k: pending[k] for k, s in zip(order, statuses, strict=True) if not s.ok}
        if not pending:
            return
        snapshots = await _read(client, (collection.document(k) for k in pending))
    raise StoreError(f"threads {sorted(pending)}: lastMessageAt kept conflicting")


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
