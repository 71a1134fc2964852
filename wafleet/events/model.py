"""Events: what happened to an account, as the event log keeps it and webhooks carry it.

An event is ``{"id", "type", "accountId", "seq", "at", "data"}`` (:meth:`Event.body`).

- ``id`` is stable where the cause can repeat: an inbound message redelivered by WhatsApp
  yields the same event id (:func:`inbound_event_id`), and a status an outbound message
  already had yields the same id as the first time (:func:`status_event_id`), so the store
  drops the repeat. Phase changes and incidents happen once each: they get a fresh id
  (:func:`new_event_id`) when they are built.
- ``seq`` increases by one per account with every event logged for it (1, 2, 3, ...),
  assigned by the store in the same write as the event, so the log order of one account is
  its seq order. An event that is built but not yet logged has ``seq`` 0.
- ``at`` is when wafleet logged what happened (``data`` holds WhatsApp's own times).

The builders here make an event from what caused it; the stores call them inside the
write that stores the cause (the inbound message and its event in one write).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args

from wafleet.core.ids import thread_id
from wafleet.core.models import (
    AccountStatus,
    Incident,
    Message,
    OutboxItem,
    iso,
    parse_iso,
    utcnow,
)

EventType = Literal["message.inbound", "message.status", "account.phase", "account.incident"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
# What ``message.status`` reports; "sending" is internal (a claim), never an event.
MessageStatus = Literal["queued", "sent", "delivered", "read", "failed", "ambiguous"]
MESSAGE_STATUSES: tuple[str, ...] = get_args(MessageStatus)
# A receipt never moves a message backwards: read after delivered, not the other way.
RECEIPT_RANK = {"sent": 1, "delivered": 2, "read": 3}
EVENT_ID_PREFIX = "evt_"


def _digest_id(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).digest()[:16]
    return EVENT_ID_PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()


def new_event_id() -> str:
    """A fresh id, for an event whose cause cannot repeat (a phase change, an incident)."""
    return EVENT_ID_PREFIX + base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def inbound_event_id(account_id: str, wa_message_id: str) -> str:
    return _digest_id("message.inbound", account_id, wa_message_id)


def status_event_id(account_id: str, message_key: str, status: str) -> str:
    """``message_key``: the outbox id when there is one, else WhatsApp's message id."""
    return _digest_id("message.status", account_id, message_key, status)


def is_event_id(value: str) -> bool:
    return (
        value.startswith(EVENT_ID_PREFIX)
        and 4 < len(value) <= 64
        and value[4:].isascii()
        and value[4:].isalnum()
    )


@dataclass(frozen=True)
class Event:
    id: str
    type: EventType
    account_id: str
    data: Mapping[str, Any]
    at: datetime = field(default_factory=utcnow)
    seq: int = 0  # assigned when logged

    def body(self) -> dict[str, Any]:
        """The event as the API, the stream and webhooks show it."""
        return {
            "id": self.id,
            "type": self.type,
            "accountId": self.account_id,
            "seq": self.seq,
            "at": iso(self.at),
            "data": dict(self.data),
        }

    def logged(self, seq: int, at: datetime | None = None) -> Event:
        return replace(self, seq=seq, at=self.at if at is None else at)


def inbound_event(message: Message, at: datetime | None = None) -> Event:
    return Event(
        id=inbound_event_id(message.account_id, message.wa_message_id),
        type="message.inbound",
        account_id=message.account_id,
        at=at or utcnow(),
        data={
            "waMessageId": message.wa_message_id,
            "threadId": thread_id(message.account_id, message.client_jid),
            "from": message.client_jid,
            "body": message.body,
            "tsClient": iso(message.ts_client),
        },
    )


def status_event(
    item: OutboxItem,
    status: MessageStatus,
    *,
    wa_message_id: str | None = None,
    error: str | None = None,
    at: datetime | None = None,
) -> Event:
    """An outbound message's new status; ``wa_message_id`` defaults to the item's."""
    data: dict[str, Any] = {
        "outboxId": item.id,
        "waMessageId": wa_message_id or item.provider_message_id,
        "threadId": item.thread_id,
        "to": item.to_jid,
        "status": status,
    }
    if error is not None:
        data["error"] = error
    return Event(
        id=status_event_id(item.account_id, item.id, status),
        type="message.status",
        account_id=item.account_id,
        at=at or utcnow(),
        data=data,
    )


def receipt_event(
    account_id: str,
    wa_message_id: str,
    client_jid: str,
    status: MessageStatus,
    *,
    outbox_id: str | None = None,
    at: datetime | None = None,
) -> Event:
    """A receipt (delivered, read) for an outbound message WhatsApp knows by its id."""
    return Event(
        id=status_event_id(account_id, outbox_id or wa_message_id, status),
        type="message.status",
        account_id=account_id,
        at=at or utcnow(),
        data={
            "outboxId": outbox_id,
            "waMessageId": wa_message_id,
            "threadId": thread_id(account_id, client_jid),
            "to": client_jid,
            "status": status,
        },
    )


def phase_event(account_id: str, status: AccountStatus, at: datetime | None = None) -> Event:
    """A phase change; with the raw QR (QRReady) or the pairing code (PairingCodeReady)."""
    data: dict[str, Any] = {"phase": status.phase.value, "reason": status.reason}
    if status.qr is not None:
        data["qr"] = status.qr
        data["qrExpiresAt"] = iso(status.qr_expires_at)
    if status.pairing_code is not None:
        data["pairingCode"] = status.pairing_code
    if status.jid is not None:
        data["jid"] = status.jid
    return Event(
        id=new_event_id(),
        type="account.phase",
        account_id=account_id,
        at=at or utcnow(),
        data=data,
    )


def incident_event(incident: Incident) -> Event:
    return Event(
        id=new_event_id(),
        type="account.incident",
        account_id=incident.account_id,
        at=incident.ts,
        data={
            "type": incident.type,
            "severity": incident.severity,
            "details": {
                k: iso(v) if isinstance(v, datetime) else v for k, v in incident.details.items()
            },
        },
    )


def event_from_body(body: Mapping[str, Any]) -> Event:
    """The inverse of :meth:`Event.body` (stores keep the body's JSON)."""
    at = parse_iso(str(body["at"]))
    assert at is not None
    return Event(
        id=str(body["id"]),
        type=body["type"],
        account_id=str(body["accountId"]),
        seq=int(body["seq"]),
        at=at,
        data=dict(body.get("data") or {}),
    )
