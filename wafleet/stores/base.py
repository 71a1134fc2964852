"""The store interfaces. SQLite implements them here; Firestore in the cluster."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from wafleet.events.model import Event, MessageStatus
from wafleet.events.webhooks import Failure, Lane, LaneKey, Webhook

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


class UnknownEvent(LookupError):
    """An event id that is not in the log (never logged, or older than the retention)."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


@dataclass(frozen=True)
class EventQuery:
    """A page of the log: the events logged after ``after``, oldest first.

    ``account_ids`` and ``types`` filter (None: all). With exactly one account the order
    is that account's seq order; otherwise the log order (SQLite: the order of the writes;
    Firestore: the commit times, then within one commit the seq, then the ids).
    """

    after: str | None = None  # an event id; None: from the oldest retained event
    account_ids: frozenset[str] | None = None
    types: frozenset[str] | None = None
    limit: int = 100


class EventLog(Protocol):
    """The event log (see :mod:`wafleet.events.model`), kept beside the messages.

    The message store's own writes log their events in the same write as what caused
    them: ``save_messages`` one ``message.inbound`` per new inbound message (none for a
    duplicate, none for outbound messages); ``enqueue`` ``message.status`` 'queued' for a new
    item; ``mark_sent`` 'sent', ``mark_final`` 'failed' / 'ambiguous' when they change the
    status (a write that changes nothing logs nothing); ``record_incident`` one
    ``account.incident``; ``apply_receipt`` 'delivered' / 'read'. Every logged event gets
    the account's next seq in that write. An event whose id is already logged is dropped.
    """

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        """Log events that have no stored cause (phase changes); return them as logged
        (with their seq and time), without those whose id was already logged."""
        ...

    async def apply_receipt(
        self, account_id: str, wa_message_id: str, status: MessageStatus, at: datetime
    ) -> Event | None:
        """A receipt for an outbound message sent through the outbox: the stored message's
        status moves forward (sent < delivered < read, never back) and its event is logged
        in the same write. None when nothing changed: no outbox item sent with that
        WhatsApp id, or the message already had that status or a later one."""
        ...

    async def list_events(self, query: EventQuery) -> list[Event]:
        """Raises UnknownEvent when ``query.after`` is not in the log."""
        ...

    async def get_event(self, event_id: str) -> Event | None: ...

    async def latest_event(self) -> Event | None:
        """The last event in log order (where a stream that starts "from now" starts)."""
        ...

    async def events_after(self, account_id: str, seq: int, limit: int) -> list[Event]:
        """The account's events with a seq above ``seq``, in seq order."""
        ...

    async def prune_events(self, before: datetime) -> int:
        """Drop events logged before ``before`` (SQLite; Firestore's TTL policy does it
        from ``expiresAt``, so there it returns 0). The seq counters are kept."""
        ...

    def on_logged(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the event loop) after each write that logged an event."""
        ...


class WebhookStore(Protocol):
    """Webhook registrations, their delivery lanes and dead letters (see
    :mod:`wafleet.events.webhooks`). One store per worker: ``worker_id`` names its claims.

    Every lane write after a claim is conditional on the claim (``lane.claim``) still being
    the lane's: a worker whose lease ran out and whose lane another worker took gets None
    (or False) back and must drop the lane.
    """

    worker_id: str

    async def create_webhook(self, hook: Webhook) -> None: ...

    async def get_webhook(self, webhook_id: str) -> Webhook | None: ...

    async def list_webhooks(self) -> list[Webhook]:
        """Every webhook, oldest first (disabled ones too)."""
        ...

    async def delete_webhook(self, webhook_id: str) -> bool:
        """Remove the webhook with its lanes and dead letters; False if unknown."""
        ...

    async def disable_webhook(self, webhook_id: str, reason: str, at: datetime) -> None:
        """No more deliveries (the endpoint answered 410 Gone)."""
        ...

    async def due_lanes(self, hooks: Sequence[Webhook], now: datetime, limit: int) -> list[LaneKey]:
        """Lanes of these (enabled) webhooks that may have an event to deliver now: the
        account logged events past the lane's cursor (or the lane does not exist yet and the
        account logged an event since the webhook was created), the lane is not waiting for
        a retry later than ``now``, and no other worker holds a live claim on it. A hint:
        ``claim_lane`` decides. Accounts a webhook does not want are left out."""
        ...

    async def claim_lane(
        self, key: LaneKey, hook: Webhook, now: datetime, lease: timedelta
    ) -> Lane | None:
        """Claim the lane until ``now + lease``; None when another worker holds a live claim,
        or it waits for a retry later than ``now``, or it has nothing past its cursor. A
        lane claimed for the first time starts after the last event its account logged
        before the webhook was created (a webhook gets what happens from its creation on).
        A claim this worker already holds (it restarted) is taken over at once."""
        ...

    async def lane_delivered(
        self, lane: Lane, cursor: int, now: datetime, lease: timedelta
    ) -> Lane | None:
        """The lane is done up to ``cursor`` (delivered or filtered out): its failure state
        is cleared and its claim renewed until ``now + lease``. None when the claim was lost
        or the cursor moved under it (a replay rewound it): drop the lane."""
        ...

    async def lane_failed(
        self, lane: Lane, error: str, now: datetime, next_attempt_at: datetime
    ) -> bool:
        """The event after the cursor failed: attempts + 1, ``first_failure_at`` kept (or
        ``now``), the error kept, and the claim released until ``next_attempt_at``.
        False when the claim was lost."""
        ...

    async def lane_dead_letter(
        self, lane: Lane, event: Event, error: str, now: datetime, lease: timedelta
    ) -> Lane | None:
        """Put ``event`` (the one after the cursor) on the webhook's dead-letter list and
        move the cursor past it, in one write; the failure state is cleared and the claim
        renewed. None when the claim was lost."""
        ...

    async def release_lane(self, lane: Lane) -> None:
        """Give the claim up (nothing left to deliver, or the worker stops)."""
        ...

    async def list_failures(self, webhook_id: str, limit: int) -> list[Failure]:
        """The webhook's dead letters, newest first."""
        ...

    async def replay(self, webhook_id: str, after: Event) -> int:
        """Deliver again everything logged after ``after``: the lane of ``after``'s account
        goes back to ``after.seq``, every other account's lane (created if missing, for the
        accounts the webhook wants) to just before its first event logged after ``after``.
        A lane never moves forward here, and its failure state is cleared. Returns how many
        lanes were rewound."""
        ...

    async def close(self) -> None: ...


class MessageStore(EventLog, Protocol):
    """Threads and messages, the outbox and incidents (the legacy Firestore collections),
    and the event log their writes feed (:class:`EventLog`)."""

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

    async def outbox_depths(self, account_ids: Sequence[str]) -> dict[str, int]:
        """Account id -> how many of its items wait: queued or being sent (every id given
        is in the answer, 0 when none wait)."""
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
