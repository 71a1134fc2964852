"""MessageStore on Cloud Firestore, in the legacy schema (see docs/firestore.md).

``threads/{accountId}__{clientJid}`` and their ``messages/{waMessageId}``
(:mod:`firestore_threads`), ``outbox/{id}`` (:mod:`firestore_outbox`, receipts in
:mod:`firestore_receipts`), ``incidents/{auto id}`` (here, with an ``expiresAt`` TTL
field), and the event log their writes feed, ``events/{id}`` and
``event_heads/{accountId}`` (:mod:`firestore_events`; every write that logs events goes
through one :class:`~wafleet.stores.firestore_seq.Sequencer`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Self

from google.cloud.firestore import AsyncClient, FieldFilter, Query

from wafleet.core.models import Incident, Message, OutboxItem, Thread
from wafleet.core.settings import Settings
from wafleet.events.model import Event, MessageStatus, incident_event
from wafleet.stores import firestore_receipts, firestore_threads
from wafleet.stores.base import EventQuery
from wafleet.stores.firestore_codec import INCIDENTS, incident_doc, incident_from
from wafleet.stores.firestore_events import FirestoreEventLog
from wafleet.stores.firestore_io import close_client, settings_client
from wafleet.stores.firestore_outbox import FirestoreOutbox
from wafleet.stores.firestore_seq import Plan, Reads, Request, Sequencer, Writes

DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_INCIDENT_TTL = timedelta(days=90)
DEFAULT_EVENT_RETENTION = timedelta(days=7)


def default_worker_id() -> str:
    """The pod name in a StatefulSet (stable across restarts), else the host name."""
    return os.environ.get("HOSTNAME") or socket.gethostname() or "wafleet"


class FirestoreMessageStore:
    """Threads and messages, the outbox, incidents and the event log on Firestore.

    ``worker_id`` goes into ``claimedBy`` of the outbox items this store claims;
    keep it stable across restarts of one connector (the pod name) so that a
    restart recovers its own interrupted sends at once. ``lease`` bounds how long
    another worker waits before treating such an item as interrupted.
    ``event_retention`` sets the events' ``expiresAt`` (their time + retention), which
    the TTL policy deletes them by. Listeners (:meth:`on_logged`) are called in the event
    loop after each write of this store that logged an event.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        incident_ttl: timedelta = DEFAULT_INCIDENT_TTL,
        event_retention: timedelta = DEFAULT_EVENT_RETENTION,
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._owns_client = owns_client
        self._incident_ttl = incident_ttl
        self.worker_id = worker_id or default_worker_id()
        self._seq = Sequencer(client, event_retention)
        self._outbox = FirestoreOutbox(client, self._seq, self.worker_id, lease)
        self._events = FirestoreEventLog(client, self._seq)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, worker_id: str | None = None, lease: timedelta = DEFAULT_LEASE
    ) -> FirestoreMessageStore:
        """A store on its own client for ``firestore_project`` / ``firestore_database``;
        events are kept ``event_retention_days``."""
        client = settings_client(settings)
        return cls(
            client,
            worker_id=worker_id,
            lease=lease,
            event_retention=timedelta(days=settings.event_retention_days),
            owns_client=True,
        )

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
        return await firestore_threads.save_messages(self._client, self._seq, messages)

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

    async def outbox_depths(self, account_ids: Sequence[str]) -> dict[str, int]:
        return await self._outbox.depths(account_ids)

    # --- incidents ---------------------------------------------------------------------

    async def record_incident(self, incident: Incident) -> None:
        """The incident document and its ``account.incident`` event, in one commit."""
        ref = self._client.collection(INCIDENTS).document()  # a new auto id
        doc = incident_doc(incident, self._incident_ttl)
        event = incident_event(incident)

        def decide(reads: Reads, writes: Writes) -> Plan[None]:
            writes.create(ref, doc)
            return Plan(None, [event])

        await self._seq.commit(Request(incident.account_id), decide)

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

    # --- the event log -----------------------------------------------------------------

    def on_logged(self, callback: Callable[[], None]) -> None:
        self._seq.on_logged(callback)

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        return await self._events.append_events(events)

    async def apply_receipt(
        self, account_id: str, wa_message_id: str, status: MessageStatus, at: datetime
    ) -> Event | None:
        """'delivered' or 'read' ('sent' is accepted and never moves anything)."""
        return await firestore_receipts.apply_receipt(
            self._client, self._seq, account_id, wa_message_id=wa_message_id, status=status, at=at
        )

    async def list_events(self, query: EventQuery) -> list[Event]:
        return await self._events.list_events(query)

    async def get_event(self, event_id: str) -> Event | None:
        return await self._events.get_event(event_id)

    async def latest_event(self) -> Event | None:
        return await self._events.latest_event()

    async def events_after(self, account_id: str, seq: int, limit: int) -> list[Event]:
        return await self._events.events_after(account_id, seq, limit)

    async def prune_events(self, before: datetime) -> int:
        return await self._events.prune_events(before)
