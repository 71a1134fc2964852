"""What the API needs from the rest of the system, whichever mode it runs in.

Standalone mode implements it over the SQLite registry and the in-process
session manager; cluster mode over WhatsAppAccount custom resources.
"""

from __future__ import annotations

from typing import Protocol

from wafleet.core.models import Account, AccountSpec, OutboxItem, Thread
from wafleet.stores.base import EventLog, WebhookStore
from wafleet_api.account_index import AccountSnapshot


class AccountNotFound(LookupError):
    pass


class ActionRefused(Exception):
    """The action does not apply to the account as it is (answered 409)."""


class BackendUnavailable(Exception):
    """What the backend relies on (the Kubernetes API) cannot answer now: 503, retry later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountBackend(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def ready(self) -> bool: ...

    async def add(self, spec: AccountSpec) -> tuple[Account, bool]: ...

    async def get(self, account_id: str) -> Account | None: ...

    def snapshot(self) -> AccountSnapshot:
        """Every account, in creation order, from memory (never a database round trip)."""
        ...

    async def regenerate_qr(self, account_id: str) -> None: ...

    async def disconnect(self, account_id: str) -> None: ...

    async def delete(self, account_id: str) -> None: ...

    async def send(self, item: OutboxItem) -> tuple[OutboxItem, bool]: ...

    async def outbox_item(self, item_id: str) -> OutboxItem | None: ...

    async def threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]: ...

    @property
    def event_log(self) -> EventLog:
        """The event log the API pages and streams (the message store's)."""
        ...

    @property
    def webhook_store(self) -> WebhookStore: ...

    def deliveries_changed(self) -> None:
        """A webhook was added or replayed here: deliver soon (a no-op where this process
        does not deliver, as the API pods of a cluster: the connectors poll)."""
        ...
