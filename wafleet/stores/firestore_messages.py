"""MessageStore on Cloud Firestore, in the legacy schema (see docs/firestore.md).

``threads/{accountId}__{clientJid}`` and their ``messages/{waMessageId}``
(:mod:`firestore_threads`), ``outbox/{id}`` (:mod:`firestore_outbox`) and
``incidents/{auto id}`` (here, with an ``expiresAt`` TTL field).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Self

from google.cloud.firestore import AsyncClient, FieldFilter, Query

from wafleet.core.models import Incident, Message, OutboxItem, Thread
from wafleet.core.settings import Settings
from wafleet.stores import firestore_threads
from wafleet.stores.firestore_codec import INCIDENTS, incident_doc, incident_from
from wafleet.stores.firestore_io import close_client, make_client
from wafleet.stores.firestore_outbox import FirestoreOutbox

DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_INCIDENT_TTL = timedelta(days=90)


def default_worker_id() -> str:
    """The pod name in a StatefulSet (stable across restarts), else the host name."""
    return os.environ.get("HOSTNAME") or socket.gethostname() or "wafleet"


class FirestoreMessageStore:
    """Threads and messages, the outbox and incidents on Firestore.

    ``worker_id`` goes into ``claimedBy`` of the outbox items this store claims;
    keep it stable across restarts of one connector (the pod name) so that a
    restart recovers its own interrupted sends at once. ``lease`` bounds how long
    another worker waits before treating such an item as interrupted.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        incident_ttl: timedelta = DEFAULT_INCIDENT_TTL,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._incident_ttl = incident_ttl
        self.worker_id = worker_id or default_worker_id()
        self._outbox = FirestoreOutbox(client, self.worker_id, lease)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, worker_id: str | None = None, lease: timedelta = DEFAULT_LEASE
    ) -> FirestoreMessageStore:
        """A store on its own client for ``firestore_project`` / ``firestore_database``."""
        client = make_client(
            settings.firestore_project,
            settings.firestore_database,
            settings.firestore_credentials_json,
        )
        return cls(client, worker_id=worker_id, lease=lease, owns_client=True)

    @property
    def client(self) -> AsyncClient:
        return self._client

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

    # --- messages and threads ----------------------------------------------------------

    async def save_messages(self, messages: Sequence[Message]) -> int:
        return await firestore_threads.save_messages(self._client, messages)

    async def list_threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        return await firestore_threads.list_threads(self._client, account_id, thread_id, limit)

    # --- outbox ------------------------------------------------------------------------

    async def enqueue(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        return await self._outbox.enqueue(item)

    async def get_outbox(self, item_id: str) -> OutboxItem | None:
        return await self._outbox.get(item_id)

    async def claim_next(self, account_id: str, now: datetime) -> OutboxItem | None:
        return await self._outbox.claim_next(account_id, now)

    async def mark_sent(self, item_id: str, provider_message_id: str, at: datetime) -> None:
        await self._outbox.mark_sent(item_id, provider_message_id, at)

    async def mark_retry(self, item_id: str, error: str, next_attempt_at: datetime) -> None:
        await self._outbox.mark_retry(item_id, error, next_attempt_at)

    async def mark_final(self, item_id: str, status: str, error: str) -> None:
        await self._outbox.mark_final(item_id, status, error)

    async def recover_interrupted(self, account_ids: Sequence[str] | None = None) -> list[str]:
        return await self._outbox.recover_interrupted(account_ids)

    async def pending_accounts(self) -> list[str]:
        return await self._outbox.pending_accounts()

    # --- incidents ---------------------------------------------------------------------

    async def record_incident(self, incident: Incident) -> None:
        await self._client.collection(INCIDENTS).add(incident_doc(incident, self._incident_ttl))

    async def list_incidents(
        self, *, account_id: str | None = None, limit: int = 100
    ) -> list[Incident]:
        """Newest recorded first (not part of the MessageStore protocol)."""
        if limit <= 0:
            return []
        query = self._client.collection(INCIDENTS).order_by("createdAt", direction=Query.DESCENDING)
        if account_id is not None:
            query = (
                self._client.collection(INCIDENTS)
                .where(filter=FieldFilter("accountId", "==", account_id))
                .order_by("createdAt", direction=Query.DESCENDING)
            )
        return [incident_from(snap.to_dict() or {}) async for snap in query.limit(limit).stream()]
