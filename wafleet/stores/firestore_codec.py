"""The Firestore schema: collection names, documents to and from the models.

The legacy collections (threads, messages, outbox, incidents) keep the legacy server's
shapes; the event log (``events``, ``event_heads``) is new (see docs/firestore.md).
Timestamps are stored as Firestore Timestamps truncated to milliseconds (what the
legacy JavaScript server wrote and what the SQLite store keeps), except
``tsClient``, an ISO 8601 string as in the legacy schema (``models.iso``: one
format, so string order is time order), and the server times (``SERVER_TIMESTAMP``:
``createdAt`` of messages and incidents, ``loggedAt`` of events, ``updatedAt`` of heads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from google.cloud.firestore import SERVER_TIMESTAMP

from wafleet.core.ids import thread_id as make_thread_id
from wafleet.core.models import (
    Direction,
    Incident,
    Message,
    OutboxItem,
    OutboxStatus,
    iso,
    parse_iso,
)
from wafleet.events.model import Event

THREADS = "threads"
MESSAGES = "messages"  # threads/{threadId}/messages/{waMessageId}
OUTBOX = "outbox"
INCIDENTS = "incidents"
EVENTS = "events"  # events/{eventId}
EVENT_HEADS = "event_heads"  # event_heads/{accountId}: the account's last seq
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LEGACY_STATUS = {"processing": "sending"}  # the legacy server's name for 'sending'


def ms(value: datetime) -> datetime:
    """UTC, truncated to milliseconds (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def to_datetime(value: object, default: datetime = EPOCH) -> datetime:
    """A stored timestamp (Timestamp or ISO string) as a plain UTC datetime."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC)
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=UTC,
        )
    if isinstance(value, str):
        parsed = parse_iso(value)
        if parsed is not None:
            return to_datetime(parsed)
    return default


def optional_datetime(value: object) -> datetime | None:
    return None if value is None else to_datetime(value)


# --- messages and threads --------------------------------------------------------------


def ts_client_text(value: datetime) -> str:
    text = iso(ms(value))
    assert text is not None
    return text


def message_doc(m: Message) -> dict[str, Any]:
    return {
        "accountId": m.account_id,
        "clientJid": m.client_jid,
        "direction": m.direction,
        "body": m.body,
        "waMessageId": m.wa_message_id,
        "status": m.status,
        "tsClient": ts_client_text(m.ts_client),
        "tsServer": ms(m.ts_server),
        "createdAt": SERVER_TIMESTAMP,
    }


def message_from(doc_id: str, data: Mapping[str, Any]) -> Message:
    return Message(
        account_id=str(data.get("accountId", "")),
        client_jid=str(data.get("clientJid", "")),
        direction=cast(Direction, data.get("direction", "inbound")),
        body=str(data.get("body", "")),
        wa_message_id=str(data.get("waMessageId", doc_id)),
        status=str(data.get("status", "")),
        ts_client=to_datetime(data.get("tsClient")),
        ts_server=to_datetime(data.get("tsServer", data.get("createdAt"))),
    )


def thread_key(m: Message) -> str:
    return make_thread_id(m.account_id, m.client_jid)


# --- outbox ----------------------------------------------------------------------------


def outbox_doc(item: OutboxItem) -> dict[str, Any]:
    return {
        "accountId": item.account_id,
        "toJid": item.to_jid,
        "threadId": item.thread_id,
        "payload": {"message": item.body},
        "body": item.body,
        "status": item.status,
        "attemptCount": item.attempt_count,
        "nextAttemptAt": ms(item.next_attempt_at),
        "claimedBy": None,
        "leaseUntil": None,
        "providerMessageId": item.provider_message_id,
        "idempotencyKey": item.idempotency_key,
        "error": item.error,
        "createdAt": ms(item.created_at),
        "updatedAt": ms(item.updated_at),
    }


def outbox_status(data: Mapping[str, Any]) -> str:
    status = str(data.get("status", "queued"))
    return _LEGACY_STATUS.get(status, status)


def outbox_from(doc_id: str, data: Mapping[str, Any]) -> OutboxItem:
    payload = data.get("payload")
    body = data.get("body")
    if body is None and isinstance(payload, Mapping):
        body = payload.get("message")
    created = to_datetime(data.get("createdAt"))
    provider_id = data.get("providerMessageId")
    error = data.get("error")
    return OutboxItem(
        id=doc_id,
        account_id=str(data.get("accountId", "")),
        to_jid=str(data.get("toJid", "")),
        body="" if body is None else str(body),
        idempotency_key=str(data.get("idempotencyKey") or doc_id),
        status=cast(OutboxStatus, outbox_status(data)),
        attempt_count=int(data.get("attemptCount") or 0),
        next_attempt_at=to_datetime(data.get("nextAttemptAt"), created),
        provider_message_id=None if provider_id is None else str(provider_id),
        error=None if error is None else str(error),
        created_at=created,
        updated_at=to_datetime(data.get("updatedAt"), created),
    )


# --- incidents -------------------------------------------------------------------------


def _json_default(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else str(value)


def json_map(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` through JSON, as SQLite keeps it: datetimes become ISO strings, anything
    else JSON does not know its ``str``; what is stored is what a later read gives."""
    loaded: dict[str, Any] = json.loads(json.dumps(value, default=_json_default, sort_keys=True))
    return loaded


def incident_doc(incident: Incident, ttl: timedelta) -> dict[str, Any]:
    """Details go through JSON (as in SQLite): datetimes become ISO strings."""
    details = json_map(incident.details)
    at = ms(incident.ts)
    return {
        "accountId": incident.account_id,
        "type": incident.type,
        "severity": incident.severity,
        "details": details,
        "ts": at,
        "expiresAt": at + ttl,  # TTL policy field
        "createdAt": SERVER_TIMESTAMP,  # insertion order, for listing newest first
    }


def incident_from(data: Mapping[str, Any]) -> Incident:
    details = data.get("details")
    return Incident(
        account_id=str(data.get("accountId", "")),
        type=str(data.get("type", "")),
        severity=cast(Any, data.get("severity", "medium")),
        details=dict(details) if isinstance(details, Mapping) else {},
        ts=to_datetime(data.get("ts")),
    )


# --- the event log ---------------------------------------------------------------------


def event_doc(event: Event, seq: int, retention: timedelta) -> dict[str, Any]:
    """``events/{id}``: ``loggedAt`` is the commit time of the write (log order), ``at`` the
    event's own time and ``expiresAt`` (``at`` + retention) the TTL policy's field."""
    at = ms(event.at)
    return {
        "accountId": event.account_id,
        "type": event.type,
        "seq": seq,
        "at": at,
        "loggedAt": SERVER_TIMESTAMP,
        "data": json_map(event.data),
        "expiresAt": at + retention,
    }


def event_from(doc_id: str, data: Mapping[str, Any]) -> Event:
    stored = data.get("data")
    return Event(
        id=doc_id,
        type=cast(Any, str(data.get("type", ""))),
        account_id=str(data.get("accountId", "")),
        data=dict(stored) if isinstance(stored, Mapping) else {},
        at=to_datetime(data.get("at")),
        seq=int(data.get("seq") or 0),
    )
