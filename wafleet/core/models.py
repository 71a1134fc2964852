"""Records that cross component boundaries: accounts, messages, outbox items, incidents."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from wafleet.core.phases import Phase

LoginMethod = Literal["qr", "pairingCode"]
Direction = Literal["inbound", "outbound"]
OutboxStatus = Literal["queued", "sending", "sent", "failed", "ambiguous"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as the legacy API wrote it."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class AccountSpec:
    """What was asked for: the account's identity and wishes.

    ``id`` names the account everywhere data and answers carry it: API responses, the
    Firestore documents (threads, messages, outbox, incidents, ``accounts``), the session
    store's file. It is the wafleet id (``wa-...``) or, for an account that came from the
    legacy server or was created under the legacy id style, its legacy id
    (``account_{env}_{hash}``). ``resource_name`` is what Kubernetes and the session
    backups know it by: always a ``wa-...`` name, equal to ``id`` unless the account has a
    legacy id (empty means "the same as id").
    """

    id: str
    phone: str  # E.164
    name: str
    login: LoginMethod = "qr"
    suspended: bool = False
    created_at: datetime = field(default_factory=utcnow)
    resource_name: str = ""

    def __post_init__(self) -> None:
        if not self.resource_name:
            object.__setattr__(self, "resource_name", self.id)

    @property
    def legacy_id(self) -> str | None:
        """The legacy id, when the account has one (``id`` differs from its resource)."""
        return self.id if self.id != self.resource_name else None


@dataclass(frozen=True)
class Disconnect:
    reason: str
    code: int | None
    at: datetime


@dataclass(frozen=True)
class AccountStatus:
    """What is: reported by the connector that runs the account."""

    phase: Phase = Phase.PENDING
    reason: str | None = None  # why the account is in this phase, for people
    qr: str | None = None  # the raw QR string
    qr_expires_at: datetime | None = None
    pairing_code: str | None = None
    jid: str | None = None
    last_event_at: datetime | None = None
    last_message_at: datetime | None = None
    connected_at: datetime | None = None
    reconnects: int = 0
    last_disconnect: Disconnect | None = None
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Account:
    spec: AccountSpec
    status: AccountStatus = field(default_factory=AccountStatus)
    shard: int | None = None  # the connector shard it is placed on (cluster); None: none yet

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass(frozen=True)
class Message:
    """One message of a thread (legacy ``threads/{threadId}/messages/{waMessageId}``)."""

    account_id: str
    client_jid: str
    direction: Direction
    body: str
    wa_message_id: str
    status: str  # delivered | sent | read ...
    ts_client: datetime  # when WhatsApp says it was sent
    ts_server: datetime = field(default_factory=utcnow)  # when we stored it


@dataclass(frozen=True)
class Thread:
    id: str  # {accountId}__{clientJid}
    account_id: str
    client_jid: str
    last_message_at: datetime
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class OutboxItem:
    id: str
    account_id: str
    to_jid: str
    body: str
    idempotency_key: str
    status: OutboxStatus = "queued"
    attempt_count: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    provider_message_id: str | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    @property
    def thread_id(self) -> str:
        return f"{self.account_id}__{self.to_jid}"


@dataclass(frozen=True)
class Incident:
    account_id: str
    type: str  # logged_out | qr_timeout | temp_ban | send_ambiguous ...
    severity: Literal["high", "medium", "low"]
    details: dict[str, object] = field(default_factory=dict)
    ts: datetime = field(default_factory=utcnow)
