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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions
from google.cloud.firestore import AsyncClient, FieldFilter

from wafleet.core.models import OutboxItem, utcnow
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
from wafleet.stores.firestore_io import (
    CAS_ATTEMPTS,
    Decision,
    Snapshot,
    StoreError,
    compare_and_set,
)

logger = logging.getLogger(__name__)

CLAIM_CANDIDATES = 5  # due items read per claim round
_IN_LIMIT = 15  # accounts per query: 2 statuses x 15 = 30, the limit of disjunctions


class FirestoreOutbox:
    def __init__(self, client: AsyncClient, worker_id: str, lease: timedelta) -> None:
        self._client = client
        self._worker_id = worker_id
        self._lease = lease
        self._collection = client.collection(OUTBOX)

    async def enqueue(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        ref = self._collection.document(item.id)
        doc = outbox_doc(item)
        for _ in range(3):
            try:
                await ref.create(doc)
            except exceptions.AlreadyExists:
                stored = await self.get(item.id)
                if stored is None:
                    continue  # deleted in between: try again
                return stored, False
            return outbox_from(item.id, doc), True  # exactly what was stored
        raise StoreError(f"outbox item {item.id} keeps disappearing")

    async def get(self, item_id: str) -> OutboxItem | None:
        snap = await self._collection.document(item_id).get()
        data = snap.to_dict() if snap.exists else None
        return None if data is None else outbox_from(snap.id, data)

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
                return outbox_from(snap.id, (snap.to_dict() or {}) | claim)
        logger.warning("outbox of %s: claims kept conflicting; trying again later", account_id)
        return None

    async def _change(
        self, item_id: str, wanted: str, decide: Callable[[Mapping[str, Any]], Decision]
    ) -> None:
        def guarded(snap: Snapshot) -> Decision:
            data = snap.to_dict() if snap.exists else None
            return None if data is None else decide(data)

        snap, written = await compare_and_set(
            self._client, self._collection.document(item_id), guarded
        )
        if written is None:
            data = snap.to_dict() if snap.exists else None
            state = "unknown" if data is None else outbox_status(data)
            logger.warning("outbox item %s not %s: its status is %s", item_id, wanted, state)

    async def mark_sent(self, item_id: str, provider_message_id: str, at: datetime) -> None:
        """To 'sent' from any status but 'sent': WhatsApp's word beats 'ambiguous'."""
        fields = {
            "status": "sent",
            "providerMessageId": provider_message_id,
            "error": None,
            "leaseUntil": None,
            "updatedAt": ms(at),
        }
        await self._change(
            item_id, "marked sent", lambda d: None if outbox_status(d) == "sent" else fields
        )

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

        await self._change(item_id, "queued for a retry", decide)

    async def mark_final(self, item_id: str, status: str, error: str) -> None:
        """'failed' or 'ambiguous' (ValueError otherwise); a 'sent' item stays sent."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a final outbox status is 'failed' or 'ambiguous', not {status!r}")
        fields = {"status": status, "error": error, "leaseUntil": None, "updatedAt": ms(utcnow())}
        await self._change(
            item_id, f"marked {status}", lambda d: None if outbox_status(d) == "sent" else fields
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
        found: list[tuple[datetime, str]] = []
        for query in queries:
            async for snap in query.stream():
                data = snap.to_dict() or {}
                if self._interrupted(data, now):
                    found.append((to_datetime(data.get("createdAt")), snap.id))
        recovered: list[str] = []
        for _, item_id in sorted(found):
            fields = {"status": "ambiguous", "error": INTERRUPTED_ERROR, "leaseUntil": None}

            def decide(snap: Snapshot, fields: dict[str, Any] = fields) -> Decision:
                data = snap.to_dict() if snap.exists else None
                if data is None or not self._interrupted(data, utcnow()):
                    return None
                return fields | {"updatedAt": ms(utcnow())}

            _, written = await compare_and_set(
                self._client, self._collection.document(item_id), decide
            )
            if written is not None:
                recovered.append(item_id)
        return recovered

    async def pending_accounts(self) -> list[str]:
        query = self._collection.where(filter=FieldFilter("status", "==", "queued"))
        accounts = {
            str((snap.to_dict() or {}).get("accountId", ""))
            async for snap in query.select(["accountId"]).stream()
        }
        return sorted(accounts)
