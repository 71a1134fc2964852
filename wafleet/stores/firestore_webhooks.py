"""WebhookStore on Firestore: registrations, delivery lanes and dead letters (docs/firestore.md).

- ``webhooks/{id}``: ``url``, ``secret``, ``events`` and ``accountIds`` (lists, or null:
  no filter), ``createdAt``, ``disabledAt``, ``disabledReason``;
- ``webhook_lanes/{webhookId}__{accountId}``: claims and lane writes in
  :mod:`wafleet.stores.firestore_lanes`, the due lanes in :mod:`wafleet.stores.firestore_due`;
- ``webhook_failures/{auto id}``: the dead letters, each with the event's body, newest first
  by ``recordedAt`` (the commit time).

``replay`` reads the event log beside it (``events``, ``event_heads``): the accounts that
logged after the event are those whose head moved since, and each one's first event after
it, in log order, is one query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Self

from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient, FieldFilter, Query
from google.cloud.firestore_v1.field_path import FieldPath

from wafleet.core.settings import Settings
from wafleet.events.model import Event, event_from_body
from wafleet.events.webhooks import Failure, Lane, LaneKey, Webhook
from wafleet.stores.base import UnknownEvent
from wafleet.stores.firestore_codec import EVENTS, json_map, ms, optional_datetime, to_datetime
from wafleet.stores.firestore_due import DueLanes
from wafleet.stores.firestore_io import (
    Decision,
    Snapshot,
    WriteList,
    batch_write,
    close_client,
    compare_and_set,
    raise_unexpected,
    settings_client,
)
from wafleet.stores.firestore_lane_docs import WEBHOOK_FAILURES, WEBHOOK_LANES, WEBHOOKS
from wafleet.stores.firestore_lanes import Lanes
from wafleet.stores.firestore_messages import default_worker_id
from wafleet.stores.firestore_replay import rewind, targets

logger = logging.getLogger(__name__)

_DELETE_PAGE = 500
REPLAY_CONCURRENCY = 16  # lanes rewound at once


def webhook_doc(hook: Webhook) -> dict[str, Any]:
    return {
        "url": hook.url,
        "secret": hook.secret,
        "events": None if hook.events is None else list(hook.events),
        "accountIds": None if hook.account_ids is None else list(hook.account_ids),
        "createdAt": ms(hook.created_at),
        "disabledAt": None if hook.disabled_at is None else ms(hook.disabled_at),
        "disabledReason": hook.disabled_reason,
    }


def _filter(value: object) -> tuple[str, ...] | None:
    """A stored filter (a list, or null: none)."""
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else None


def webhook_from(doc_id: str, data: Mapping[str, Any]) -> Webhook:
    reason = data.get("disabledReason")
    return Webhook(
        id=doc_id,
        url=str(data.get("url", "")),
        secret=str(data.get("secret", "")),
        events=_filter(data.get("events")),
        account_ids=_filter(data.get("accountIds")),
        created_at=to_datetime(data.get("createdAt")),
        disabled_at=optional_datetime(data.get("disabledAt")),
        disabled_reason=None if reason is None else str(reason),
    )


def _failure_from(data: Mapping[str, Any]) -> Failure:
    return Failure(
        webhook_id=str(data.get("webhookId", "")),
        event=event_from_body(data.get("event") or {}),
        attempts=int(data.get("attempts") or 0),
        first_failure_at=to_datetime(data.get("firstFailureAt")),
        last_error=str(data.get("lastError", "")),
        at=to_datetime(data.get("at")),
    )


class FirestoreWebhookStore:
    """Webhooks on Firestore for one worker: ``worker_id`` names its lane claims (keep it
    stable across restarts, the pod name: a restarted worker takes its claims over at once).
    """

    def __init__(
        self, client: AsyncClient, *, worker_id: str | None = None, owns_client: bool = False
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self.worker_id = worker_id or default_worker_id()
        self._hooks = client.collection(WEBHOOKS)
        self._lanes = Lanes(client, self.worker_id)
        self._due = DueLanes(client, self.worker_id)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, worker_id: str | None = None
    ) -> FirestoreWebhookStore:
        """A store on its own client for ``firestore_project`` / ``firestore_database``."""
        client = settings_client(settings)
        return cls(client, worker_id=worker_id, owns_client=True)

    async def open(self) -> Self:
        """Nothing to open (the channel connects on first use); for symmetry with SQLite."""
        return self

    async def close(self) -> None:
        if self._owns_client:
            self._owns_client = False
            await close_client(self._client)

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- registrations -----------------------------------------------------------------

    async def create_webhook(self, hook: Webhook) -> None:
        """Raises ``google.api_core.exceptions.AlreadyExists`` for a taken id."""
        await self._hooks.document(hook.id).create(webhook_doc(hook))

    async def get_webhook(self, webhook_id: str) -> Webhook | None:
        snap = await self._hooks.document(webhook_id).get()
        return webhook_from(snap.id, snap.to_dict() or {}) if snap.exists else None

    async def list_webhooks(self) -> list[Webhook]:
        query = self._hooks.order_by("createdAt").order_by(FieldPath.document_id())
        return [webhook_from(snap.id, snap.to_dict() or {}) async for snap in query.stream()]

    async def delete_webhook(self, webhook_id: str) -> bool:
        """The registration first (no new lanes start), then its lanes and dead letters."""
        ref = self._hooks.document(webhook_id)
        if not (await ref.get()).exists:
            return False
        await ref.delete()
        for collection in (WEBHOOK_LANES, WEBHOOK_FAILURES):
            query = (
                self._client.collection(collection)
                .where(filter=FieldFilter("webhookId", "==", webhook_id))
                .select([])
                .limit(_DELETE_PAGE)
            )
            while found := [snap.reference async for snap in query.stream()]:
                writes = WriteList(self._client)
                for doc in found:
                    writes.delete(doc)
                raise_unexpected(await batch_write(self._client, writes.writes), frozenset())
        self._due.forget_webhook(webhook_id)
        logger.info("webhook %s deleted with its lanes and dead letters", webhook_id)
        return True

    async def disable_webhook(self, webhook_id: str, reason: str, at: datetime) -> None:
        """The first disable's time and reason are kept."""

        def decide(snap: Snapshot) -> Decision:
            data = snap.to_dict() if snap.exists else None
            if data is None or data.get("disabledAt") is not None:
                return None
            return {"disabledAt": ms(at), "disabledReason": reason}

        await compare_and_set(self._client, self._hooks.document(webhook_id), decide)

    # --- lanes -------------------------------------------------------------------------

    async def due_lanes(self, hooks: Sequence[Webhook], now: datetime, limit: int) -> list[LaneKey]:
        return await self._due.due(hooks, now, limit)

    async def claim_lane(
        self, key: LaneKey, hook: Webhook, now: datetime, lease: timedelta
    ) -> Lane | None:
        return await self._lanes.claim(key, hook, now, lease)

    async def lane_delivered(
        self, lane: Lane, cursor: int, now: datetime, lease: timedelta
    ) -> Lane | None:
        return await self._lanes.delivered(lane, cursor, now, lease)

    async def lane_failed(
        self, lane: Lane, error: str, now: datetime, next_attempt_at: datetime
    ) -> bool:
        return await self._lanes.failed(lane, error, now, next_attempt_at)

    async def lane_dead_letter(
        self, lane: Lane, event: Event, error: str, now: datetime, lease: timedelta
    ) -> Lane | None:
        """The dead letter keeps the lane's failing run: its first failure (or now), its
        attempts with the one that failed just now (``lane_failed`` never recorded it), and
        ``error``, the last one."""

        def failure(stored: Mapping[str, Any]) -> dict[str, Any]:
            return {
                "webhookId": lane.webhook_id,
                "accountId": event.account_id,
                "eventId": event.id,
                "event": json_map(event.body()),
                "attempts": int(stored.get("attempts") or 0) + 1,
                "firstFailureAt": optional_datetime(stored.get("firstFailureAt")) or ms(now),
                "lastError": error,
                "at": ms(now),
                "recordedAt": SERVER_TIMESTAMP,
            }

        cursor = max(event.seq, lane.cursor)
        return await self._lanes.dead_letter(lane, failure, cursor=cursor, now=now, lease=lease)

    async def release_lane(self, lane: Lane) -> None:
        await self._lanes.release(lane)

    async def list_failures(self, webhook_id: str, limit: int) -> list[Failure]:
        if limit <= 0:
            return []
        query = (
            self._client.collection(WEBHOOK_FAILURES)
            .where(filter=FieldFilter("webhookId", "==", webhook_id))
            .order_by("recordedAt", direction=Query.DESCENDING)
            .order_by(FieldPath.document_id(), direction=Query.DESCENDING)
            .limit(limit)
        )
        return [_failure_from(snap.to_dict() or {}) async for snap in query.stream()]

    # --- replay ------------------------------------------------------------------------

    async def replay(self, webhook_id: str, after: Event) -> int:
        hook = await self.get_webhook(webhook_id)
        if hook is None:
            return 0
        snap = await self._client.collection(EVENTS).document(after.id).get()
        if not snap.exists:
            raise UnknownEvent(after.id)
        goals = await targets(self._client, hook, after, snap)
        gate = asyncio.Semaphore(REPLAY_CONCURRENCY)

        async def one(account_id: str, goal: int) -> bool:
            async with gate:
                return await rewind(self._client, hook, account_id, goal)

        moved = await asyncio.gather(*(one(a, goal) for a, goal in sorted(goals.items())))
        rewound = sum(moved)
        logger.info(
            "webhook %s replayed after event %s: %d lanes rewound", webhook_id, after.id, rewound
        )
        return rewound
