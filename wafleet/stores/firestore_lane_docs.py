"""The webhook collections' names and the lane document, and where a new lane starts.

A new lane starts after the last event its account logged (by the events' ``at``) before
the webhook was created; with none retained from before, just before its oldest retained
event (or at its head, when none is retained at all), as in SQLite.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.api_core import exceptions
from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient, FieldFilter, Query

from wafleet.events.webhooks import LaneKey
from wafleet.stores.firestore_codec import EVENTS, ms

WEBHOOKS = "webhooks"
WEBHOOK_LANES = "webhook_lanes"
WEBHOOK_FAILURES = "webhook_failures"
CONFLICTS = (exceptions.FailedPrecondition, exceptions.AlreadyExists, exceptions.NotFound)


def lane_doc_id(key: LaneKey) -> str:
    return f"{key.webhook_id}__{key.account_id}"


def cleared() -> dict[str, Any]:
    """No failing run."""
    return {"attempts": 0, "firstFailureAt": None, "lastError": None, "nextAttemptAt": None}


def new_lane(key: LaneKey, cursor: int) -> dict[str, Any]:
    return {
        "webhookId": key.webhook_id,
        "accountId": key.account_id,
        "cursor": cursor,
        **cleared(),
        "claim": None,
        "claimedBy": None,
        "leaseUntil": None,
        "updatedAt": SERVER_TIMESTAMP,
    }


async def lane_start(client: AsyncClient, account_id: str, created_at: datetime, head: int) -> int:
    """Where a new lane of a webhook created at ``created_at`` starts (module docstring)."""
    events = client.collection(EVENTS).where(filter=FieldFilter("accountId", "==", account_id))
    before = (
        events.where(filter=FieldFilter("at", "<", ms(created_at)))
        .order_by("at", direction=Query.DESCENDING)
        .limit(10)  # "at" and seq go together but for clock steps: the highest seq of these
    )
    seqs = [int((snap.to_dict() or {}).get("seq") or 0) async for snap in before.stream()]
    if seqs:
        return max(seqs)
    oldest = [snap async for snap in events.order_by("seq").limit(1).stream()]
    return int((oldest[0].to_dict() or {}).get("seq") or 1) - 1 if oldest else head


async def logged_after(client: AsyncClient, account_id: str, cursor: int) -> bool:
    query = (
        client.collection(EVENTS)
        .where(filter=FieldFilter("accountId", "==", account_id))
        .where(filter=FieldFilter("seq", ">", cursor))
        .order_by("seq")
        .limit(1)
    )
    return bool([snap async for snap in query.stream()])
