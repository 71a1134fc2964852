"""Replays on Firestore: where each lane of a webhook goes back to, and the rewinds.

The lane of the event's own account goes back to the event's seq; every other account that
logged after it (its head moved since: ``event_heads.updatedAt``), to just before its first
event after it in log order (``loggedAt``, seq, id: one query each, from the event's
snapshot). A lane never moves forward; its failure state is cleared; a missing lane (of an
account the webhook wants) is created at the earlier of its goal and where it would have
started, so it skips nothing. Each lane is one conditional write; claims are left alone
(the holder's next write finds the cursor moved and drops the lane).
"""

from __future__ import annotations

import asyncio
import random

from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient, FieldFilter

from wafleet.events.model import Event
from wafleet.events.webhooks import LaneKey, Webhook
from wafleet.stores.firestore_codec import EVENT_HEADS, EVENTS, to_datetime
from wafleet.stores.firestore_due import DueLanes
from wafleet.stores.firestore_events import in_log_order
from wafleet.stores.firestore_io import CAS_ATTEMPTS, Snapshot, StoreError
from wafleet.stores.firestore_lane_docs import (
    CONFLICTS,
    WEBHOOK_LANES,
    cleared,
    lane_doc_id,
    lane_start,
    new_lane,
)

CONCURRENCY = 16  # accounts looked up at once


async def targets(
    client: AsyncClient, hook: Webhook, after: Event, snap: Snapshot
) -> dict[str, int]:
    """Each wanted account's goal: the cursor its lane goes back to (module docstring)."""
    goals: dict[str, int] = {}
    if hook.wants_account(after.account_id):
        goals[after.account_id] = after.seq
    logged_at = to_datetime((snap.to_dict() or {}).get("loggedAt"))
    since = client.collection(EVENT_HEADS).where(
        filter=FieldFilter("updatedAt", ">=", logged_at - DueLanes.MARGIN)
    )
    accounts = [
        head.id
        async for head in since.select(["seq"]).stream()
        if head.id != after.account_id and hook.wants_account(head.id)
    ]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def first_after(account_id: str) -> int | None:
        of_account = client.collection(EVENTS).where(
            filter=FieldFilter("accountId", "==", account_id)
        )
        query = in_log_order(of_account).start_after(snap).limit(1)
        async with gate:
            found = [event async for event in query.stream()]
        return int((found[0].to_dict() or {}).get("seq") or 1) if found else None

    firsts = await asyncio.gather(*(first_after(account) for account in accounts))
    for account, first in zip(accounts, firsts, strict=True):
        if first is not None:
            goals[account] = first - 1
    return goals


async def rewind(client: AsyncClient, hook: Webhook, account_id: str, goal: int) -> bool:
    """Move the lane back to ``goal`` (never forward); True if that moved it back."""
    key = LaneKey(hook.id, account_id)
    ref = client.collection(WEBHOOK_LANES).document(lane_doc_id(key))
    head_ref = client.collection(EVENT_HEADS).document(account_id)
    for attempt in range(CAS_ATTEMPTS):
        snaps = {s.reference.path: s async for s in client.get_all([ref, head_ref])}
        lane, head = snaps[ref.path], snaps[head_ref.path]
        batch = client.batch()
        if lane.exists:
            stored = lane.to_dict() or {}
            was = int(stored.get("cursor") or 0)
            if was <= goal and all(stored.get(k) in (None, 0) for k in cleared()):
                return False  # already there, nothing failing: nothing to write
            fields = {"cursor": min(was, goal), **cleared(), "updatedAt": SERVER_TIMESTAMP}
            batch.update(ref, fields, option=client.write_option(last_update_time=lane.update_time))
        else:
            seq = int((head.to_dict() or {}).get("seq") or 0) if head.exists else 0
            was = await lane_start(client, account_id, hook.created_at, seq)
            batch.create(ref, new_lane(key, min(was, goal)))
        try:
            await batch.commit()
        except CONFLICTS:
            await asyncio.sleep(0.005 * min(attempt + 1, 10) * random.random())
            continue
        return goal < was
    raise StoreError(f"lane {lane_doc_id(key)}: gave up after {CAS_ATTEMPTS} conflicting writes")
