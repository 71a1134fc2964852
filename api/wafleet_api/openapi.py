"""The OpenAPI 3.1 document: every route of the app, described here once (the sim's
routes in ``openapi_sim``, the shared pieces in ``openapi_types``).

The document is exact: each pattern, length and range is the one the server enforces
(the patterns are the server's own, from ``wafleet.core.http`` and ``wafleet.core.phones``),
and each operation lists every status it can answer. What no JSON Schema keyword can say
is a ``format``: ``phone`` (a number valid for its country; ``openapi_types.phone``) and
``cursor`` (a ``nextCursor`` this server gave).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

from wafleet import __version__
from wafleet.core.http import (
    NAME_PATTERN,
    PRINTABLE_ASCII_PATTERN,
    REQUIRED_TEXT_PATTERN,
    VISIBLE_ASCII_PATTERN,
)
from wafleet.core.phases import LEGACY_STATUS, Phase
from wafleet.core.phones import EXAMPLE_PHONE
from wafleet_api.listing import MAX_PAGE, QR_FORMS
from wafleet_api.openapi_access import ACCESS_OPERATIONS, PAGE_PARAMETERS, PAGE_RESPONSES
from wafleet_api.openapi_events import EVENT_OPERATIONS
from wafleet_api.openapi_sim import SIM_OPERATIONS
from wafleet_api.openapi_types import (
    ERROR,
    JSON_ERRORS,
    NULLABLE_STR,
    STR,
    body,
    errors,
    nullable,
    ok,
    phone,
    query,
)
from wafleet_api.routes_messages import MAX_ACCOUNT_ID, MAX_KEY, MAX_LIMIT, MAX_TEXT, MAX_TO

DESCRIPTION = (
    "Every pattern, length and range below is what the server enforces, and every "
    "operation lists the statuses it answers; errors are one JSON shape, "
    '{"success": false, "error": {"code", "message"}}. Two formats say what no JSON '
    "Schema keyword can: 'phone' (a number valid for its country, beside the pattern of "
    "its spelling) and 'cursor' (a nextCursor this server gave)."
)
_ACCOUNT = {"$ref": "#/components/schemas/Account"}
_ACCOUNT_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_ACCOUNT_ID,
    "pattern": VISIBLE_ASCII_PATTERN,
    "examples": ["wa-abcdefghijklmnopabcd", "account_prod_0123456789abcdef0123456789abcdef"],
}
_ID = {
    "name": "account_id",
    "in": "path",
    "required": True,
    "description": (
        "The account's id, as answers show it (wa-... or, for an account with a legacy id, "
        "account_{env}_{hash}); an account with a legacy id is also found by its wa-... "
        "name. An unknown id is a 404"
    ),
    "schema": {"type": "string", "minLength": 1},
}
_ACCOUNT_LINKS = {
    "GetAccount": {
        "operationId": "getAccount",
        "parameters": {"account_id": "$response.body#/account/id"},
    },
    "DeleteAccount": {
        "operationId": "deleteAccount",
        "parameters": {"account_id": "$response.body#/account/id"},
    },
    "RegenerateQr": {
        "operationId": "regenerateQr",
        "parameters": {"account_id": "$response.body#/account/id"},
    },
    "Disconnect": {
        "operationId": "disconnect",
        "parameters": {"account_id": "$response.body#/account/id"},
    },
    "QrPage": {"operationId": "qrPage", "parameters": {"account_id": "$response.body#/account/id"}},
    "Messages": {
        "operationId": "getMessages",
        "parameters": {"accountId": "$response.body#/account/id"},
    },
}
_ACTION_FIELDS: dict[str, Any] = {"success": {"const": True}, "accountId": STR}
_ACTION = {"type": "object", "required": ["success", "accountId"], "properties": _ACTION_FIELDS}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/whatsapp/add-account"): {
        "operationId": "addAccount",
        "summary": "Add an account (idempotent: same phone, same account)",
        "requestBody": body(
            {
                "phone": phone(40),
                "name": nullable(
                    {
                        "type": "string",
                        "maxLength": 100,
                        "pattern": NAME_PATTERN,
                        "description": "One line of visible text (no control, bidi or "
                        "invisible format characters); 'Account <last 4 digits>' if absent",
                    }
                ),
                "login": {"enum": ["qr", "pairingCode", None], "default": "qr"},
            },
            ["phone"],
            {"phone": EXAMPLE_PHONE, "name": "Shop", "login": "qr"},
        ),
        "responses": {
            "200": {
                **ok(
                    {
                        "type": "object",
                        "required": ["success", "created", "account"],
                        "properties": {
                            "success": {"const": True},
                            "created": {"type": "boolean"},
                            "account": _ACCOUNT,
                        },
                    },
                    "The account (created: true if new, false if it existed)",
                ),
                "links": _ACCOUNT_LINKS,
            },
            **errors(400, 401, 403, 409, 413, 503),
        },
    },
    ("get", "/api/whatsapp/accounts"): {
        "operationId": "listAccounts",
        "summary": "List accounts with status, QR (raw and PNG) and pairing code",
        "parameters": [
            query(
                "qr",
                {"enum": list(QR_FORMS), "default": "png"},
                "png (data URL and raw code), raw, or none",
            ),
            query(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                "one page of this many accounts, in creation order (100 with a cursor)",
            ),
            query(
                "cursor",
                {"type": "string", "format": "cursor", "pattern": "^[A-Za-z0-9_-]+$"},
                "the nextCursor of the previous page",
            ),
        ],
        "responses": {
            "200": ok(
                {
                    "type": "object",
                    "required": ["success", "accounts"],
                    "properties": {
                        "success": {"const": True},
                        "accounts": {"type": "array", "items": _ACCOUNT},
                        "nextCursor": NULLABLE_STR,
                    },
                }
            ),
            **errors(400, 401, 403, 503),
        },
    },
    ("get", "/api/whatsapp/accounts/{account_id}"): {
        "operationId": "getAccount",
        "summary": "One account",
        "parameters": [
            _ID,
            query(
                "qr",
                {"enum": list(QR_FORMS), "default": "png"},
                "png (data URL and raw code), raw, or none",
            ),
        ],
        "responses": {
            "200": ok(
                {
                    "type": "object",
                    "required": ["success", "account"],
                    "properties": {"success": {"const": True}, "account": _ACCOUNT},
                }
            ),
            **errors(400, 401, 403, 404, 503),
        },
    },
    ("delete", "/api/whatsapp/accounts/{account_id}"): {
        "operationId": "deleteAccount",
        "summary": "Delete an account: log the device out and wipe its session",
        "parameters": [_ID],
        "responses": {
            "200": ok(
                {
                    **_ACTION,
                    "required": ["success", "accountId", "deleted"],
                    "properties": {**_ACTION_FIELDS, "deleted": {"const": True}},
                }
            ),
            **errors(401, 403, 404, 409, 503),
        },
    },
    ("get", "/api/status/dashboard"): {
        "operationId": "dashboard",
        "summary": "Service, storage, every account (phones masked) and a summary",
        "responses": {
            "200": ok(
                {
                    "type": "object",
                    "required": ["service", "storage", "accounts", "summary"],
                    "properties": {
                        "timestamp": STR,
                        "service": {"type": "object"},
                        "storage": {"type": "object"},
                        "accounts": {"type": "array", "items": {"type": "object"}},
                        "summary": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                    },
                }
            ),
            **errors(401, 403, 503),
        },
    },
    ("get", "/api/whatsapp/qr/{account_id}"): {
        "operationId": "qrPage",
        "summary": "HTML page with the account's QR code, refreshing until connected; "
        "with the bearer token or opened by a signed link",
        "parameters": [_ID, *PAGE_PARAMETERS],
        "responses": {
            "200": {"description": "HTML page", "content": {"text/html": {"schema": STR}}},
            **errors(404, 503),
            **PAGE_RESPONSES,
        },
    },
    ("get", "/api/whatsapp/qr-visual"): {
        "operationId": "qrVisual",
        "summary": "HTML page with every QR code waiting for a scan; with the bearer token "
        "or opened by a signed link",
        "parameters": PAGE_PARAMETERS,
        "responses": {
            "200": {"description": "HTML page", "content": {"text/html": {"schema": STR}}},
            **errors(503),
            **PAGE_RESPONSES,
        },
    },
    ("post", "/api/whatsapp/regenerate-qr/{account_id}"): {
        "operationId": "regenerateQr",
        "summary": "Start linking again (after logout, QR timeout or disconnect)",
        "parameters": [_ID],
        "responses": {"200": ok(_ACTION), **errors(401, 403, 404, 409, 503)},
    },
    ("post", "/api/whatsapp/disconnect/{account_id}"): {
        "operationId": "disconnect",
        "summary": "Stop the session and keep it (suspend); regenerate-qr resumes",
        "parameters": [_ID],
        "responses": {"200": ok(_ACTION), **errors(401, 403, 404, 409, 503)},
    },
    ("post", "/api/whatsapp/send-message"): {
        "operationId": "sendMessage",
        "summary": "Send a text through the outbox (idempotent by idempotencyKey)",
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The idempotency key, if the body has none",
                "schema": {
                    "type": "string",
                    "maxLength": MAX_KEY,
                    "pattern": PRINTABLE_ASCII_PATTERN,
                },
            }
        ],
        "requestBody": body(
            {
                "accountId": _ACCOUNT_ID,
                "to": phone(MAX_TO),
                "message": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_TEXT,
                    "pattern": REQUIRED_TEXT_PATTERN,
                    "description": "Free text (new lines, right-to-left text...) but NUL; "
                    "not only whitespace",
                },
                "idempotencyKey": nullable(
                    {
                        "type": "string",
                        "maxLength": MAX_KEY,
                        "pattern": PRINTABLE_ASCII_PATTERN,
                        "description": "Same key, same outbox item (empty: none)",
                    }
                ),
            },
            ["accountId", "to", "message"],
            {"accountId": "wa-abcdefghijklmnopabcd", "to": "+40799000001", "message": "Hello"},
        ),
        "responses": {
            "200": {
                **ok(
                    {
                        "type": "object",
                        "required": ["success", "outboxId", "status", "queued", "duplicate"],
                        "properties": {
                            "success": {"type": "boolean"},
                            "messageId": NULLABLE_STR,
                            "queued": {"type": "boolean"},
                            "outboxId": STR,
                            "status": STR,
                            "duplicate": {"type": "boolean"},
                        },
                    },
                    "Sent, queued (queued: true), or a repeat of an earlier request",
                ),
                "links": {
                    "GetOutbox": {
                        "operationId": "getOutbox",
                        "parameters": {"item_id": "$response.body#/outboxId"},
                    }
                },
            },
            **errors(400, 401, 403, 404, 413, 503),
        },
    },
    ("get", "/api/whatsapp/messages"): {
        "operationId": "getMessages",
        "summary": "Threads with their newest messages",
        "parameters": [
            query(
                "accountId",
                {**_ACCOUNT_ID, "minLength": 0, "pattern": "^$|" + VISIBLE_ASCII_PATTERN},
                "only this account's threads (an unknown account is a 404)",
            ),
            query(
                "threadId",
                {"type": "string", "pattern": "^$|__"},
                "only this thread: '<accountId>__<jid>'",
            ),
            query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}),
        ],
        "responses": {
            "200": ok(
                {
                    "type": "object",
                    "required": ["success", "threads"],
                    "properties": {
                        "success": {"const": True},
                        "threads": {"type": "array", "items": {"type": "object"}},
                    },
                }
            ),
            **errors(400, 401, 403, 404, 503),
        },
    },
    ("get", "/api/whatsapp/outbox/{item_id}"): {
        "operationId": "getOutbox",
        "summary": "One outbox item and its state",
        "parameters": [
            {
                "name": "item_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
            }
        ],
        "responses": {
            "200": ok(
                {
                    "type": "object",
                    "required": ["success", "item"],
                    "properties": {"success": {"const": True}, "item": {"type": "object"}},
                }
            ),
            **errors(401, 403, 404, 503),
        },
    },
    ("get", "/health"): {
        "operationId": "health",
        "summary": "Liveness (no token)",
        "security": [],
        "responses": {"200": ok({"type": "object", "required": ["status"]})},
    },
    ("get", "/readyz"): {
        "operationId": "readyz",
        "summary": "Readiness (no token)",
        "security": [],
        "responses": {
            "200": ok({"type": "object", "properties": {"status": {"const": "ready"}}}),
            "503": ok(
                {"type": "object", "properties": {"status": {"const": "starting"}}}, "Starting"
            ),
        },
    },
    ("get", "/metrics"): {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "description": "Every series of this process (docs/metrics.md), for the admin token "
        "or an API key with read covering every account.",
        "responses": {
            "200": {
                "description": "Prometheus text format; OpenMetrics when Accept asks for it",
                "content": {
                    "text/plain": {"schema": STR},
                    "application/openmetrics-text": {"schema": STR},
                },
            },
            **errors(401, 403, 503),
        },
    },
    ("get", "/openapi.json"): {
        "operationId": "openapi",
        "summary": "This document",
        "responses": {"200": ok({"type": "object"}), **errors(401)},
    },
    **ACCESS_OPERATIONS,
    **EVENT_OPERATIONS,
    **SIM_OPERATIONS,
}

_SCHEMAS = {
    "Error": ERROR,
    "Account": {
        "type": "object",
        "required": ["id", "name", "phone", "status", "phase"],
        "properties": {
            "id": STR,
            "name": STR,
            "phone": {**STR, "examples": [EXAMPLE_PHONE]},
            "status": {"enum": sorted(set(LEGACY_STATUS.values()))},
            "phase": {"enum": [p.value for p in Phase]},
            "reason": NULLABLE_STR,
            "login": {"enum": ["qr", "pairingCode"]},
            "suspended": {"type": "boolean"},
            "qr": NULLABLE_STR,
            "qrCode": NULLABLE_STR,
            "qrExpiresAt": NULLABLE_STR,
            "pairingCode": NULLABLE_STR,
            "jid": NULLABLE_STR,
            "createdAt": NULLABLE_STR,
            "reconnects": {"type": "integer", "minimum": 0},
            "shard": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "the connector shard running it (cluster); null in standalone "
                "mode and before the operator places it",
            },
        },
    },
}


def openapi_document(routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Describe each (method, path) the app serves that has an entry in OPERATIONS."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            operation = OPERATIONS.get((method.lower(), route.path))
            if operation is not None:
                paths.setdefault(route.path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "wafleet API", "version": __version__, "description": DESCRIPTION},
        "components": {
            "schemas": _SCHEMAS,
            "responses": JSON_ERRORS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
