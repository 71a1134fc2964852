"""Webhook lanes on Firestore: ``webhook_lanes/{webhookId}__{accountId}``, claims and lane writes.

A lane document holds ``webhookId``, ``accountId``, ``cursor``, the failure state
(``attempts``, ``firstFailureAt``, ``lastError``, ``nextAttemptAt``), the claim
(``claim``: a random token, ``claimedBy``: the worker id, ``leaseUntil``) and
``updatedAt`` (``SERVER_TIMESTAMP``: the due-lane mirror reads the lanes changed since
its last look, :mod:`wafleet.stores.firestore_due`).

- A claim reads the lane, the account's event head and the webhook in one round trip and
  writes the claim conditional on the lane being unchanged since (``update_time``, or
  "does not exist" for a new lane): of several workers claiming at once one wins, the
  others read again and find the lane held.
- Every later write is conditional on the claim token and on the cursor its holder saw (a
  replay that rewound the lane under it is not overwritten). The holder knows the lane's
  state after its own last write, and that write's ``update_time``: the next write goes
  out with that ``update_time`` as its precondition, one round trip, and only when it
  fails (someone else wrote the lane) is the lane read again to decide.
- A new lane starts where :func:`~wafleet.stores.firestore_lane_docs.lane_start` says.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient
from google.cloud.firestore_v1.async_document import AsyncDocumentReference

from wafleet.events.webhooks import Lane, LaneKey, Webhook
from wafleet.stores.firestore_codec import EVENT_HEADS, ms, optional_datetime
from wafleet.stores.firestore_io import CAS_ATTEMPTS, StoreError
from wafleet.stores.firestore_lane_docs import (
    CONFLICTS,
    WEBHOOK_FAILURES,
    WEBHOOK_LANES,
    WEBHOOKS,
    cleared,
    lane_doc_id,
    lane_start,
    logged_after,
    new_lane,
)

logger = logging.getLogger(__name__)

_KNOWN_CLAIMS = 10_000  # claims whose last write this store remembers


def _advanced(
    lane: Lane, cursor: int, now: datetime, lease: timedelta
) -> tuple[Lane, dict[str, Any]]:
    """The lane past ``cursor``, its failure state cleared and its claim renewed; and the
    document fields that say so."""
    lease_until = ms(now + lease)
    moved = replace(
        lane,
        cursor=cursor,
        lease_until=lease_until,
        attempts=0,
        first_failure_at=None,
        last_error=None,
    )
    fields = {
        "cursor": cursor,
        **cleared(),
        "leaseUntil": lease_until,
        "updatedAt": SERVER_TIMESTAMP,
    }
    return moved, fields


@dataclass
class _Held:
    """What a write under a claim decided: the lane's new fields, the lane as its holder
    knows it afterwards (None: the claim is given up), other documents to create with it."""

    fields: dict[str, Any]
    lane: Lane | None
    creates: list[tuple[AsyncDocumentReference, dict[str, Any]]] = field(default_factory=list)


def _as_stored(lane: Lane) -> dict[str, Any]:
    """The fields of a held lane as its holder knows them."""
    return {
        "claim": lane.claim,
        "cursor": lane.cursor,
        "attempts": lane.attempts,
        "firstFailureAt": lane.first_failure_at,
        "lastError": lane.last_error,
    }


class Lanes:
    """Claims and lane writes for one worker (see the module docstring)."""

    def __init__(self, client: AsyncClient, worker_id: str) -> None:
        self._client = client
        self._worker_id = worker_id
        self._collection = client.collection(WEBHOOK_LANES)
        self._known: dict[str, tuple[Any, Lane]] = {}  # claim -> (update_time, lane)

    def ref(self, key: LaneKey) -> AsyncDocumentReference:
        ref: AsyncDocumentReference = self._collection.document(lane_doc_id(key))
        return ref

    def _remember(self, update_time: Any, lane: Lane | None, claim: str) -> None:
        if lane is None:
            self._known.pop(claim, None)
            return
        if len(self._known) >= _KNOWN_CLAIMS:
            self._known.clear()
        self._known[claim] = (update_time, lane)

    async def claim(
        self, key: LaneKey, hook: Webhook, now: datetime, lease: timedelta
    ) -> Lane | None:
        if not hook.enabled or not hook.wants_account(key.account_id):
            return None
        ref = self.ref(key)
        head_ref = self._client.collection(EVENT_HEADS).document(key.account_id)
        hook_ref = self._client.collection(WEBHOOKS).document(key.webhook_id)
        for attempt in range(CAS_ATTEMPTS):
            snaps = {
                s.reference.path: s async for s in self._client.get_all([ref, head_ref, hook_ref])
            }
            snap, head_snap = snaps[ref.path], snaps[head_ref.path]
            head = int((head_snap.to_dict() or {}).get("seq") or 0) if head_snap.exists else 0
            batch = self._client.batch()
            if snap.exists:
                stored = snap.to_dict() or {}
                lease_until = optional_datetime(stored.get("leaseUntil"))
                others = stored.get("claimedBy") != self._worker_id
                if stored.get("claim") and others and lease_until is not None and lease_until > now:
                    return None  # another worker's live claim
                next_attempt = optional_datetime(stored.get("nextAttemptAt"))
                if next_attempt is not None and next_attempt > now:
                    return None  # waiting for a retry
                option = self._client.write_option(last_update_time=snap.update_time)
            else:
                if not snaps[hook_ref.path].exists:
                    return None  # deleted meanwhile
                start = await lane_start(self._client, key.account_id, hook.created_at, head)
                stored = new_lane(key, start)
                option = None
            cursor = int(stored.get("cursor") or 0)
            claim: dict[str, Any] | None = None
            if head > cursor and await logged_after(self._client, key.account_id, cursor):
                lease_until = ms(now + lease)
                token = secrets.token_hex(16)
                claim = {"claim": token, "claimedBy": self._worker_id, "leaseUntil": lease_until}
                fields = claim | {"updatedAt": SERVER_TIMESTAMP}
            elif head > cursor:
                # What lay past the cursor expired before it was delivered: it is gone.
                logger.warning(
                    "webhook %s lane %s: events %d..%d expired undelivered; skipped",
                    key.webhook_id,
                    key.account_id,
                    cursor + 1,
                    head,
                )
                fields = {"cursor": head, **cleared(), "updatedAt": SERVER_TIMESTAMP}
            elif snap.exists:
                return None  # nothing past the cursor
            else:
                fields = {}  # a new lane with nothing to deliver yet: it is stored, unclaimed
            if option is None:
                batch.create(ref, stored | fields)
            else:
                batch.update(ref, fields, option=option)
            try:
                results = await batch.commit()
            except CONFLICTS:
                await asyncio.sleep(0.005 * min(attempt + 1, 10) * random.random())
                continue
            if claim is None:
                return None
            lane = Lane(
                webhook_id=key.webhook_id,
                account_id=key.account_id,
                cursor=cursor,
                claim=claim["claim"],
                lease_until=claim["leaseUntil"],
                attempts=int(stored.get("attempts") or 0),
                first_failure_at=optional_datetime(stored.get("firstFailureAt")),
                last_error=stored.get("lastError"),
            )
            self._remember(results[0].update_time, lane, lane.claim)
            return lane
        raise StoreError(
            f"lane {lane_doc_id(key)}: gave up after {CAS_ATTEMPTS} conflicting writes"
        )

    async def _held(
        self,
        lane: Lane,
        decide: Callable[[Mapping[str, Any]], _Held],
        *,
        at_cursor: bool = True,
    ) -> _Held | None:
        """Write what ``decide`` returns if ``lane.claim`` still holds the lane (and, with
        ``at_cursor``, the cursor is still ``lane.cursor``); None when it does not."""
        ref = self.ref(lane.key)
        known = self._known.get(lane.claim)
        attempts: list[tuple[Mapping[str, Any], Any]] = []
        if known is not None and known[1] == lane:
            attempts.append((_as_stored(lane), known[0]))  # nobody wrote it since: one trip
        for attempt in range(CAS_ATTEMPTS):
            if attempts:
                stored, version = attempts.pop()
            else:
                snap = await ref.get()
                stored = snap.to_dict() or {} if snap.exists else {}
                version = snap.update_time
                held = snap.exists and stored.get("claim") == lane.claim
                if not held or (at_cursor and int(stored.get("cursor") or 0) != lane.cursor):
                    self._known.pop(lane.claim, None)
                    return None
            plan = decide(stored)
            batch = self._client.batch()
            batch.update(
                ref, plan.fields, option=self._client.write_option(last_update_time=version)
            )
            for other, doc in plan.creates:
                batch.create(other, doc)
            try:
                results = await batch.commit()
            except CONFLICTS:
                if attempt:
                    await asyncio.sleep(0.005 * min(attempt, 10) * random.random())
                continue
            self._remember(results[0].update_time, plan.lane, lane.claim)
            return plan
        raise StoreError(f"lane {lane_doc_id(lane.key)}: gave up after {CAS_ATTEMPTS} conflicts")

    async def delivered(
        self, lane: Lane, cursor: int, now: datetime, lease: timedelta
    ) -> Lane | None:
        moved, fields = _advanced(lane, cursor, now, lease)
        plan = await self._held(lane, lambda stored: _Held(fields, moved))
        return None if plan is None else plan.lane

    async def failed(
        self, lane: Lane, error: str, now: datetime, next_attempt_at: datetime
    ) -> bool:
        def decide(stored: Mapping[str, Any]) -> _Held:
            first = optional_datetime(stored.get("firstFailureAt")) or ms(now)
            fields = {
                "attempts": int(stored.get("attempts") or 0) + 1,
                "firstFailureAt": first,
                "lastError": error,
                "nextAttemptAt": ms(next_attempt_at),
                "claim": None,
                "claimedBy": None,
                "leaseUntil": None,
                "updatedAt": SERVER_TIMESTAMP,
            }
            return _Held(fields, None)

        return await self._held(lane, decide) is not None

    async def dead_letter(
        self,
        lane: Lane,
        failure: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        cursor: int,
        now: datetime,
        lease: timedelta,
    ) -> Lane | None:
        """Move the cursor to ``cursor`` and create the dead letter ``failure`` builds from
        the lane's stored failure state, in one commit."""
        moved, fields = _advanced(lane, cursor, now, lease)
        failures = self._client.collection(WEBHOOK_FAILURES)

        def decide(stored: Mapping[str, Any]) -> _Held:
            return _Held(fields, moved, [(failures.document(), failure(stored))])

        plan = await self._held(lane, decide)
        return None if plan is None else plan.lane

    async def release(self, lane: Lane) -> None:
        fields = {
            "claim": None,
            "claimedBy": None,
            "leaseUntil": None,
            "updatedAt": SERVER_TIMESTAMP,
        }
        await self._held(lane, lambda stored: _Held(fields, None), at_cursor=False)
