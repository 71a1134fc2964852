"""The store interfaces. SQLite implements them here; Firestore in the cluster."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from wafleet.core.apikeys import ApiKey
from wafleet.core.models import (
    Account,
    AccountSpec,
    AccountStatus,
    Incident,
    Message,
    OutboxItem,
    Thread,
)

# What a send cut by a crash becomes, and the states an outbox item never leaves.
INTERRUPTED_ERROR = (
    "interrupted while sending: it may or may not have reached WhatsApp; not re-sent"
)
FINAL_STATUSES = frozenset({"failed", "ambiguous"})


class AccountRegistry(Protocol):
    """Accounts: their spec (what was asked) and status (what the connector reports)."""

    async def create(self, spec: AccountSpec) -> tuple[Account, bool]:
        """Insert ``spec`` unless an account with its id exists; return it and whether new."""
        ...

    async def get(self, account_id: str) -> Account | None: ...

    async def list(self) -> list[Account]: ...

    async def set_suspended(self, account_id: str, suspended: bool) -> Account | None: ...

    async def update_status(self, account_id: str, status: AccountStatus) -> bool:
        """Replace the status; False if the account no longer exists."""
        ...

    async def delete(self, account_id: str) -> bool: ...

    async def close(self) -> None: ...


class MessageStore(Protocol):
    """Threads and messages, the outbox and incidents (the legacy Firestore collections)."""

    async def save_messages(self, messages: Sequence[Message]) -> int:
        """Store messages, dropping any whose (account, wa_message_id) is already stored.

        Updates each thread's last_message_at, which never moves backwards.
        Returns how many were new.
        """
        ...

    async def list_threads(
        self, *, account_id: str | None, thread_id: str | None, limit: int
    ) -> list[Thread]:
        """Up to ``limit`` threads, newest first, each with up to ``limit`` newest messages.

        Messages within a thread are returned oldest first.
        """
        ...

    async def enqueue(self, item: OutboxItem) -> tuple[OutboxItem, bool]:
        """Queue ``item`` unless its (account, idempotency key) exists; return it and if new."""
        ...

    async def get_outbox(self, item_id: str) -> OutboxItem | None: ...

    async def claim_next(self, account_id: str, now: datetime) -> OutboxItem | None:
        """Move the oldest due queued item of the account to 'sending' and return it."""
        ...

    async def mark_sent(self, item_id: str, provider_message_id: str, at: datetime) -> None: ...

    async def mark_retry(self, item_id: str, error: str, next_attempt_at: datetime) -> None:
        """Back to 'queued' (the send never reached WhatsApp), attempt counted."""
        ...

    async def mark_final(self, item_id: str, status: str, error: str) -> None:
        """'failed' or 'ambiguous', with the reason."""
        ...

    async def recover_interrupted(self, account_ids: Sequence[str] | None = None) -> list[str]:
        """Items left in 'sending' by a crash become 'ambiguous'; return their ids."""
        ...

    async def pending_accounts(self) -> list[str]:
        """Accounts that have queued items."""
        ...

    async def record_incident(self, incident: Incident) -> None: ...

    async def close(self) -> None: ...


class KeyStore(Protocol):
    """Scoped API keys (hashed); SQLite in standalone mode, Firestore in a cluster."""

    async def create(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the key revoked (a second revoke keeps the first time); None if unknown."""
        ...

    async def list(self) -> list[ApiKey]: ...

    async def close(self) -> None: ...
