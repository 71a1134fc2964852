"""The outbox on Firestore: ``outbox/{id}``, states queued -> sending -> sent | failed | ambiguous.

- enqueue: ``create`` with the caller's id (derived from account and idempotency
  key), so a repeated request finds the first item instead of queueing another.
- claim: the oldest due queued items of the account are read, and the first is
  moved to 'sending' by an update conditional on its ``update_time`` (an atomic
  compare-and-set). Of two pods claiming the same item, exactly one write
  applies; the other moves on to the next candidate. The claim records
  ``claimedBy`` (this store's worker id) and ``leaseUntil``.
- An item stays 'sending' when its lease expires: it may have reached WhatsApp,
  so it never goes back to the queue by itself. ``recover_interrupted`` makes it
  'ambiguous' once it is this worker's own (a restart) or its lease has expired
  (its worker died); items of live workers are left alone.
- State rules as in SQLite: retry only from 'sending' (attempt counted), sent
  not over 'sent', final only 'failed'/'ambiguous' and never over 'sent'.
- Every change an outside reader sees logs ``message.status`` in the same commit as the
  item's write (:class:`~wafleet.stores.firestore_seq.Sequencer`): 'queued' by a new
  ``enqueue``, 'sent', 'failed' and 'ambiguous' when the status changes (also when
  ``recover_interrupted`` makes an item 'ambiguous'). Claims and ``mark_retry`` (back to
  'queued', which the outside never stopped seeing) log nothing and stay cheap
  compare-and-sets.
- The receipts of what it sent are in :mod:`wafleet.stores.firestore_receipts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

from google.api_core import exceptions
from google.cloud.firestore import AsyncClient, FieldFilter

from wafleet.core.models import OutboxItem, utcnow
from wafleet.events.model import Event, MessageStatus, status_event, status_event_id
from wafleet.stores.base import FINAL_STATUSES, INTERRUPTED_ERROR
from wafleet.stores.firestore_codec import (
    OUTBOX,
    ms,
    optional_datetime,
    outbox_doc,
    outbox_from,
    outbox_status,
    to_datetime,
)
from wafleet.stores.firestore_io import CAS_ATTEMPTS, Decision, Snapshot, compare_and_set
from wafleet.stores.firestore_seq import Plan, Read, Reads, Request, Sequencer, Writes

# Items that wait (the outbox's depth); "processing" is what the legacy server wrote.
WAITING_STATUSES = ["queued", "sending", "processing"]
DEPTH_PARALLEL = 10  # count queries at once

logger = logging.getLogger(__name__)

CLAIM_CANDIDATES = 5  # due items read per claim round
_IN_LIMIT = 15  # accounts per query: 2 statuses x 15 = 30, the limit of disjunctions
_KNOWN_ACCOUNTS = 10_000  # item id -> account id remembered (a transition's head to read)
# What a transition decides from the item's fields: the fields to write (None: nothing)
# and the event to log with them (None: the status is not new).
Transition = Callable[[OutboxItem, Mapping[str, Any]], tuple[Decision, Event | None]]


class FirestoreOutbox:
    def __init__(
        self, client: AsyncClient, seq: Sequencer, worker_id: str, lease: timedelta
    ) -> None:
        self._client = client
        self._seq = seq
        self._worker_id = worker_id
        self._lease = lease
        self._collection = client.collection(OUTBOX)
        self._accounts: dict[str, str] = {}

    def _remember(self, item_id: str, account_id: str) -> None:
        if len(self._accounts) >= _KNOWN_ACCOUNTS:
            self._accounts.clear()
        self._accounts[item_id] = account_id

    async def _account_of(self, item_id: str) -> str | None:
        account_id = self._accounts.get(item_id)
        if account_id is None:
            item = await self.get(item_id)
            account_id = None if item is None else item.account_id
        return account_id

    async def enqueue(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        ref = self._collection.document(item.id)
        doc = outbox_doc(item)
        created = outbox_from(item.id, doc)  # exactly what is stored
        queued = status_event(created, "queued")

        def decide(reads: Reads, writes: Writes) -> Plan[tuple[OutboxItem, bool]]:
            stored = reads.data(ref)
            if stored is not None:
                return Plan((outbox_from(item.id, stored), False))
            writes.create(ref, doc)
            return Plan((created, True), [queued])

        request = Request(item.account_id, [Read([ref])], [queued.id])
        result, _ = await self._seq.commit(request, decide)
        self._remember(item.id, item.account_id)
        return result

    async def get(self, item_id: str) -> OutboxItem | None:
        snap = await self._collection.document(item_id).get()
        data = snap.to_dict() if snap.exists else None
        if data is None:
            return None
        item = outbox_from(snap.id, data)
        self._remember(item.id, item.account_id)
        return item

    async def claim_next(self, account_id: str, now: datetime) -> OutboxItem | None:
        at = ms(now)
        query = (
            self._collection.where(filter=FieldFilter("accountId", "==", account_id))
            .where(filter=FieldFilter("status", "==", "queued"))
            .where(filter=FieldFilter("nextAttemptAt", "<=", at))
            .order_by("createdAt")
            .limit(CLAIM_CANDIDATES)
        )
        claim = {
            "status": "sending",
            "claimedBy": self._worker_id,
            "leaseUntil": at + self._lease,
            "updatedAt": at,
        }
        for _ in range(CAS_ATTEMPTS):
            candidates = [snap async for snap in query.stream()]
            if not candidates:
                return None
            for snap in candidates:
                option = self._client.write_option(last_update_time=snap.update_time)
                try:
                    await snap.reference.update(claim, option=option)
                except (exceptions.FailedPrecondition, exceptions.NotFound):
                    continue  # another claimer got it (or it changed): next candidate
                self._remember(snap.id, account_id)
                return outbox_from(snap.id, (snap.to_dict() or {}) | claim)
        logger.warning("outbox of %s: claims kept conflicting; trying again later", account_id)
        return None

    async def _transition(
        self,
        item_id: str,
        status: str,
        decide: Transition,
        *,
        wanted: str | None = None,
        account_id: str | None = None,
    ) -> bool:
        """Write what ``decide`` returns and log its event, in one commit; False when it
        wrote nothing (logged as a warning when ``wanted`` names what was asked)."""
        account_id = account_id or await self._account_of(item_id)
        ref = self._collection.document(item_id)

        def plan(reads: Reads, writes: Writes) -> Plan[str | None]:
            data = reads.data(ref)
            if data is None:
                return Plan("unknown")
            fields, event = decide(outbox_from(item_id, data), data)
            if fields is None:
                return Plan(outbox_status(data))
            writes.update(ref, fields)
            return Plan(None, [event] if event is not None else [])

        state: str | None = "unknown"
        if account_id is not None:
            event_id = status_event_id(account_id, item_id, status)
            request = Request(account_id, [Read([ref])], [event_id])
            state, _ = await self._seq.commit(request, plan)
        if state is not None and wanted is not None:
            logger.warning("outbox item %s not %s: its status is %s", item_id, wanted, state)
        return state is None

    async def mark_sent(self, item_id: str, provider_message_id: str, at: datetime) -> None:
        """To 'sent' from any status but 'sent': WhatsApp's word beats 'ambiguous'."""
        fields = {
            "status": "sent",
            "providerMessageId": provider_message_id,
            "error": None,
            "leaseUntil": None,
            "updatedAt": ms(at),
        }

        def decide(item: OutboxItem, data: Mapping[str, Any]) -> tuple[Decision, Event | None]:
            if item.status == "sent":
                return None, None
            sent = replace(item, provider_message_id=provider_message_id)
            return fields, status_event(sent, "sent", at=at)

        await self._transition(item_id, "sent", decide, wanted="marked sent")

    async def mark_final(self, item_id: str, status: str, error: str) -> None:
        """'failed' or 'ambiguous' (ValueError otherwise); a 'sent' item stays sent. The
        event is logged when the status changes (a repeat only refreshes the error)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a final outbox status is 'failed' or 'ambiguous', not {status!r}")
        final = cast(MessageStatus, status)
        fields = {"status": status, "error": error, "leaseUntil": None, "updatedAt": ms(utcnow())}

        def decide(item: OutboxItem, data: Mapping[str, Any]) -> tuple[Decision, Event | None]:
            if item.status == "sent":
                return None, None
            new = item.status != status
            return fields, status_event(item, final, error=error) if new else None

        await self._transition(item_id, status, decide, wanted=f"marked {status}")

    async def mark_retry(self, item_id: str, error: str, next_attempt_at: datetime) -> None:
        """Back to 'queued' with the attempt counted; only from 'sending', never re-sends."""

        def decide(data: Mapping[str, Any]) -> Decision:
            if outbox_status(data) != "sending":
                return None
            return {
                "status": "queued",
                "attemptCount": int(data.get("attemptCount") or 0) + 1,
                "error": error,
                "nextAttemptAt": ms(next_attempt_at),
                "claimedBy": None,
                "leaseUntil": None,
                "updatedAt": ms(utcnow()),
            }

        def guarded(snap: Snapshot) -> Decision:
            data = snap.to_dict() if snap.exists else None
            return None if data is None else decide(data)

        ref = self._collection.document(item_id)
        snap, written = await compare_and_set(self._client, ref, guarded)
        if written is None:
            data = snap.to_dict() if snap.exists else None
            state = "unknown" if data is None else outbox_status(data)
            logger.warning(
                "outbox item %s not queued for a retry: its status is %s", item_id, state
            )

    def _interrupted(self, data: Mapping[str, Any], now: datetime) -> bool:
        """'sending', and either ours (we restarted) or its lease is over (its worker died)."""
        if outbox_status(data) != "sending":
            return False
        lease_until = optional_datetime(data.get("leaseUntil"))
        return data.get("claimedBy") == self._worker_id or lease_until is None or lease_until <= now

    async def recover_interrupted(self, account_ids: Sequence[str] | None) -> list[str]:
        if account_ids is not None and not account_ids:
            return []
        base = self._collection.where(filter=FieldFilter("status", "in", ["sending", "processing"]))
        if account_ids is None:
            queries = [base]
        else:
            ids = sorted(set(account_ids))
            queries = [
                base.where(filter=FieldFilter("accountId", "in", ids[i : i + _IN_LIMIT]))
                for i in range(0, len(ids), _IN_LIMIT)
            ]
        now = utcnow()
        found: list[tuple[datetime, str, str]] = []
        for query in queries:
            async for snap in query.stream():
                data = snap.to_dict() or {}
                if self._interrupted(data, now):
                    created = to_datetime(data.get("createdAt"))
                    found.append((created, snap.id, str(data.get("accountId", ""))))
        recovered: list[str] = []
        for _, item_id, account_id in sorted(found):

            def decide(item: OutboxItem, data: Mapping[str, Any]) -> tuple[Decision, Event | None]:
                if not self._interrupted(data, utcnow()):
                    return None, None
                fields = {
                    "status": "ambiguous",
                    "error": INTERRUPTED_ERROR,
                    "leaseUntil": None,
                    "updatedAt": ms(utcnow()),
                }
                return fields, status_event(item, "ambiguous", error=INTERRUPTED_ERROR)

            if await self._transition(item_id, "ambiguous", decide, account_id=account_id):
                recovered.append(item_id)
        if recovered:
            logger.warning("%d interrupted outbox sends marked ambiguous", len(recovered))
        return recovered

    async def depths(self, account_ids: Sequence[str]) -> dict[str, int]:
        """One aggregation query per account, DEPTH_PARALLEL at once (``count()`` is
        billed as one read per 1,000 items counted)."""
        gate = asyncio.Semaphore(DEPTH_PARALLEL)

        async def one(account_id: str) -> tuple[str, int]:
            query = self._collection.where(filter=FieldFilter("accountId", "==", account_id)).where(
                filter=FieldFilter("status", "in", WAITING_STATUSES)
            )
            # The library's annotations type count() as the class, not an instance.
            counting: Any = query.count(alias="n")
            async with gate:
                results = await counting.get()
            return account_id, int(results[0][0].value)

        return dict(await asyncio.gather(*(one(a) for a in account_ids)))

    async def pending_accounts(self) -> list[str]:
        query = self._collection.where(filter=FieldFilter("status", "==", "queued"))
        accounts = {
            str((snap.to_dict() or {}).get("accountId", ""))
            async for snap in query.select(["accountId"]).stream()
        }
        return sorted(accounts)
