"""Which webhook lanes are due, on Firestore, without reading every head on every look.

``due_lanes`` is asked about twice a second by every delivering pod, once per webhook. The
store keeps a mirror of ``event_heads`` (each account's last seq, the ``at`` of its last
event) and of ``webhook_lanes`` (cursor, retry time, claim), and each look brings it up to
date with two queries run together: the heads and the lanes whose ``updatedAt`` (the
server's commit time, written with every head and lane write) is past a watermark. The
first look reads everything once.

The watermark is the newest ``updatedAt`` seen, but no later than the previous look's
time less ``MARGIN``: a commit that became visible up to ``MARGIN`` after its time is still
seen. (Firestore's reads are strongly consistent, so a commit older than what a query
returned is never visible only later; the margin is for safety.) Once a margin has passed
since the last change, the watermark is the newest ``updatedAt`` itself: a quiet fleet
costs two empty queries a look, a busy one reads each changed head and lane about once,
and again while it is within the margin.

The rest is decided in memory against ``now``, as SQLite's query does: a lane that does not
exist yet is due once its account logged an event from the webhook's creation on; one
that exists when the head is past its cursor, it waits for no retry later than ``now``
(``nextAttemptAt``: retries come due by themselves) and no other worker holds a live
claim on it (``leaseUntil`` past ``now``: the claims of dead workers come free by
themselves). A hint: ``claim_lane`` decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.cloud.firestore import AsyncClient, FieldFilter

from wafleet.core.models import utcnow
from wafleet.events.webhooks import LaneKey, Webhook
from wafleet.stores.firestore_codec import EPOCH, EVENT_HEADS, ms, optional_datetime, to_datetime
from wafleet.stores.firestore_io import Snapshot
from wafleet.stores.firestore_lane_docs import WEBHOOK_LANES


@dataclass(frozen=True)
class _Head:
    seq: int
    at: datetime  # the last event's own time
    updated: datetime


@dataclass(frozen=True)
class _LaneState:
    cursor: int
    next_attempt_at: datetime | None
    claimed: bool
    claimed_by: str | None
    lease_until: datetime | None
    updated: datetime


class DueLanes:
    """The mirror of one webhook store (see the module docstring)."""

    MARGIN = timedelta(seconds=1)

    def __init__(self, client: AsyncClient, worker_id: str) -> None:
        self._client = client
        self._worker_id = worker_id
        self._heads: dict[str, _Head] = {}
        self._lanes: dict[LaneKey, _LaneState] = {}
        self._heads_seen: datetime | None = None  # the newest updatedAt read
        self._lanes_seen: datetime | None = None
        self._looked: datetime | None = None  # when the previous look began

    def forget_webhook(self, webhook_id: str) -> None:
        """Drop a deleted webhook's lanes (one created again with its id starts afresh)."""
        for key in [k for k in self._lanes if k.webhook_id == webhook_id]:
            del self._lanes[key]

    def _mark(self, seen: datetime | None) -> datetime:
        """The watermark (module docstring); the epoch for a first look."""
        if seen is None or self._looked is None:
            return EPOCH
        return min(seen, self._looked - self.MARGIN)

    async def _read(self, collection: str, seen: datetime | None) -> list[Snapshot]:
        query = self._client.collection(collection).where(
            filter=FieldFilter("updatedAt", ">", self._mark(seen))
        )
        return [snap async for snap in query.stream()]

    async def refresh(self) -> None:
        looked = utcnow()
        heads, lanes = await asyncio.gather(
            self._read(EVENT_HEADS, self._heads_seen), self._read(WEBHOOK_LANES, self._lanes_seen)
        )
        self._looked = looked
        for snap in heads:
            data = snap.to_dict() or {}
            head = _Head(
                seq=int(data.get("seq") or 0),
                at=to_datetime(data.get("at")),
                updated=to_datetime(data.get("updatedAt")),
            )
            known = self._heads.get(snap.id)
            if known is None or head.seq >= known.seq:
                self._heads[snap.id] = head
            self._heads_seen = max(self._heads_seen or EPOCH, head.updated)
        for snap in lanes:
            data = snap.to_dict() or {}
            key = LaneKey(str(data.get("webhookId", "")), str(data.get("accountId", "")))
            lane = _LaneState(
                cursor=int(data.get("cursor") or 0),
                next_attempt_at=optional_datetime(data.get("nextAttemptAt")),
                claimed=bool(data.get("claim")),
                claimed_by=data.get("claimedBy"),
                lease_until=optional_datetime(data.get("leaseUntil")),
                updated=to_datetime(data.get("updatedAt")),
            )
            known_lane = self._lanes.get(key)
            if known_lane is None or lane.updated >= known_lane.updated:
                self._lanes[key] = lane
            self._lanes_seen = max(self._lanes_seen or EPOCH, lane.updated)

    def _due(self, hook: Webhook, account_id: str, now: datetime) -> bool:
        head = self._heads[account_id]
        lane = self._lanes.get(LaneKey(hook.id, account_id))
        if lane is None:
            return head.at >= ms(hook.created_at)
        if head.seq <= lane.cursor:
            return False
        if lane.next_attempt_at is not None and lane.next_attempt_at > now:
            return False
        live = lane.lease_until is not None and lane.lease_until > now
        return not lane.claimed or lane.claimed_by == self._worker_id or not live

    async def due(self, hooks: Sequence[Webhook], now: datetime, limit: int) -> list[LaneKey]:
        enabled = [hook for hook in hooks if hook.enabled]
        if not enabled or limit <= 0:
            return []
        await self.refresh()
        found: list[tuple[str, datetime, str]] = []
        for hook in enabled:
            if hook.account_ids is None:
                accounts: Sequence[str] = list(self._heads)
            else:
                accounts = [a for a in hook.account_ids if a in self._heads]
            found += [(a, hook.created_at, hook.id) for a in accounts if self._due(hook, a, now)]
        found.sort()
        return [LaneKey(webhook_id, account_id) for account_id, _, webhook_id in found[:limit]]
