"""The OpenAPI description of the event routes: the log, its stream, and webhooks."""

from __future__ import annotations

from typing import Any

from wafleet.core.apikeys import MAX_ACCOUNTS
from wafleet.core.ids import ANY_ACCOUNT_ID_RE
from wafleet.events.model import EVENT_TYPES, MESSAGE_STATUSES
from wafleet_api.openapi_types import NULLABLE_STR, STR, errors, ok, query
from wafleet_api.routes_events import DEFAULT_LIMIT, MAX_LIMIT
from wafleet_api.routes_webhooks import MAX_FAILURES, MAX_SECRET, MAX_URL

_EVENT_ID = {"type": "string", "pattern": r"^evt_[A-Za-z0-9]{1,60}$"}
_ACCOUNT_ID = {"type": "string", "pattern": ANY_ACCOUNT_ID_RE.pattern}
_ONE_TYPE = "|".join(t.replace(".", r"\.") for t in EVENT_TYPES)
_TYPES = {
    "type": "string",
    "pattern": f"^({_ONE_TYPE})(,({_ONE_TYPE}))*$",
    "examples": ["message.inbound,message.status"],
}
_WEBHOOK_ID = {
    "name": "webhook_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
    "example": "wh_0123456789abcdef",
}
_EVENT = {
    "type": "object",
    "required": ["id", "type", "accountId", "seq", "at", "data"],
    "properties": {
        "id": {**_EVENT_ID, "description": "stable: a redelivered cause has the same id"},
        "type": {"enum": list(EVENT_TYPES)},
        "accountId": STR,
        "seq": {"type": "integer", "minimum": 1, "description": "1, 2, 3 ... per account"},
        "at": {"type": "string", "format": "date-time"},
        "data": {
            "type": "object",
            "description": "message.inbound: waMessageId, threadId, from, body, tsClient; "
            "message.status: outboxId, waMessageId, threadId, to, status ("
            + ", ".join(MESSAGE_STATUSES)
            + "), error; account.phase: phase, reason, qr, qrExpiresAt, pairingCode, jid; "
            "account.incident: type, severity, details",
        },
    },
}
_WEBHOOK = {
    "type": "object",
    "required": ["id", "url", "events", "accountIds", "createdAt", "enabled"],
    "properties": {
        "id": STR,
        "url": STR,
        "events": {"type": ["array", "null"], "items": {"enum": list(EVENT_TYPES)}},
        "accountIds": {"type": ["array", "null"], "items": STR},
        "createdAt": {"type": "string", "format": "date-time"},
        "enabled": {"type": "boolean"},
        "disabledAt": NULLABLE_STR,
        "disabledReason": NULLABLE_STR,
    },
}
_TYPES_LIST = ",".join(EVENT_TYPES)
_FILTERS = [
    query("accountId", _ACCOUNT_ID, "Only this account's events, in its seq order"),
    query("types", _TYPES, f"Comma-separated event types: {_TYPES_LIST}"),
]


def _answer(**properties: Any) -> dict[str, Any]:
    fields = {"success": {"const": True}, **properties}
    return {"type": "object", "properties": fields, "required": sorted(fields)}


_NEW_WEBHOOK = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_URL,
            "format": "webhook-url",
            "description": "http(s), without credentials; its host must resolve to public "
            "addresses only (private, loopback and link-local ones are refused unless "
            "WAFLEET_WEBHOOK_ALLOW_PRIVATE): format 'webhook-url'",
        },
        "events": {
            "type": ["array", "null"],
            "minItems": 1,
            "items": {"enum": list(EVENT_TYPES)},
            "description": "Event types to deliver; left out: all",
        },
        "accountIds": {
            "type": ["array", "null"],
            "minItems": 1,
            "maxItems": MAX_ACCOUNTS,
            "items": _ACCOUNT_ID,
            "description": "Accounts to deliver; left out: all (a key limited to some "
            "accounts must name them)",
        },
        "secret": {
            "type": ["string", "null"],
            "maxLength": MAX_SECRET,
            "format": "webhook-secret",
            "pattern": r"^whsec_[A-Za-z0-9+/]+={0,2}$",
            "description": "whsec_ + base64 of 24 to 64 bytes (format 'webhook-secret'); "
            "left out: generated",
        },
    },
}

EVENT_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/events"): {
        "summary": "Page through the event log, oldest first (the accounts the key may read)",
        "parameters": [
            query("after", _EVENT_ID, "The events logged after this one"),
            *_FILTERS,
            query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            ),
        ],
        "responses": {
            "200": ok(
                _answer(
                    events={"type": "array", "items": _EVENT},
                    nextAfter={**NULLABLE_STR, "description": "'after' of the next page"},
                ),
                "A page of events",
            ),
            **errors(400, 401, 403, 404),
        },
    },
    ("get", "/api/events/stream"): {
        "summary": "Follow the event log as Server-Sent Events (resume with Last-Event-ID)",
        "parameters": [
            query("after", _EVENT_ID, "Start after this event (Last-Event-ID wins)"),
            *_FILTERS,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": _EVENT_ID,
            },
        ],
        "responses": {
            "200": {
                "description": "An endless text/event-stream: 'id' is the event id, 'event' "
                "its type, 'data' its JSON; a comment every 15 s keeps it alive. With "
                "neither Last-Event-ID nor after, it starts with the events logged from now",
                "content": {"text/event-stream": {"schema": STR}},
            },
            **errors(400, 401, 403, 404),
        },
    },
    ("post", "/api/webhooks"): {
        "summary": "Register a webhook (Standard Webhooks signatures); the secret is shown once",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _NEW_WEBHOOK,
                }
            },
        },
        "responses": {
            "201": ok(
                _answer(webhook=_WEBHOOK, secret={"type": "string", "pattern": "^whsec_"}),
                "The webhook, and its signing secret",
            ),
            **errors(400, 401, 403, 413),
        },
    },
    ("get", "/api/webhooks"): {
        "summary": "List the webhooks (never their secrets)",
        "responses": {
            "200": ok(_answer(webhooks={"type": "array", "items": _WEBHOOK}), "The webhooks"),
            **errors(401, 403),
        },
    },
    ("get", "/api/webhooks/{webhook_id}"): {
        "summary": "One webhook",
        "parameters": [_WEBHOOK_ID],
        "responses": {"200": ok(_answer(webhook=_WEBHOOK), "The webhook"), **errors(401, 403, 404)},
    },
    ("delete", "/api/webhooks/{webhook_id}"): {
        "summary": "Delete a webhook, its delivery state and its dead letters",
        "parameters": [_WEBHOOK_ID],
        "responses": {
            "200": ok(_answer(webhookId=STR), "Deleted"),
            **errors(401, 403, 404),
        },
    },
    ("post", "/api/webhooks/{webhook_id}/replay"): {
        "summary": "Deliver again everything logged after an event",
        "parameters": [_WEBHOOK_ID],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["after"],
                        "properties": {"after": _EVENT_ID},
                    }
                }
            },
        },
        "responses": {
            "200": ok(
                _answer(webhookId=STR, after=STR, lanes={"type": "integer", "minimum": 0}),
                "Rewound: 'lanes' accounts deliver again",
            ),
            **errors(400, 401, 403, 404, 409, 413),
        },
    },
    ("get", "/api/webhooks/{webhook_id}/failures"): {
        "summary": "The webhook's dead letters: events not accepted within the retry window",
        "parameters": [
            _WEBHOOK_ID,
            query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_FAILURES}),
        ],
        "responses": {
            "200": ok(
                _answer(
                    webhookId=STR,
                    failures={
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["event", "attempts", "lastError", "deadLetteredAt"],
                            "properties": {
                                "event": _EVENT,
                                "attempts": {"type": "integer"},
                                "firstFailureAt": STR,
                                "lastError": STR,
                                "deadLetteredAt": STR,
                            },
                        },
                    },
                ),
                "Newest first",
            ),
            **errors(400, 401, 403, 404),
        },
    },
}
