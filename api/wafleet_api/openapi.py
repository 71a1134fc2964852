"""The OpenAPI 3.1 document: every route of the app, described here once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Route

from wafleet import __version__
from wafleet.sim.faults import FAULT_KINDS as SIM_FAULTS

_ERROR = {"$ref": "#/components/schemas/Error"}
_ACCOUNT = {"$ref": "#/components/schemas/Account"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Bad input; the message says what to fix",
        401: "Missing or wrong bearer token",
        404: "Unknown account",
        409: "The action does not apply to the account as it is",
        413: "Body too large",
        503: "The cluster API cannot answer now; retry after the Retry-After header",
    }
    return {str(code): _json(_ERROR, text[code]) for code in codes}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_ID = {"name": "account_id", "in": "path", "required": True, "schema": {"type": "string"}}
_STR = {"type": "string"}
_OBJ = {"type": "object"}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/whatsapp/add-account"): {
        "summary": "Add an account (idempotent: same phone, same account)",
        "requestBody": _body(
            {
                "phone": {"type": "string", "description": "E.164, or local with a region"},
                "name": _STR,
                "login": {"enum": ["qr", "pairingCode"]},
            },
            ["phone"],
        ),
        "responses": {
            "200": _json(
                {"type": "object", "properties": {"account": _ACCOUNT}},
                "The account (created: true if new, false if it existed)",
            ),
            **_errors(400, 401, 409, 413, 503),
        },
    },
    ("get", "/api/whatsapp/accounts"): {
        "summary": "List accounts with status, QR (raw and PNG) and pairing code",
        "parameters": [
            {
                "name": "qr",
                "in": "query",
                "required": False,
                "description": "png (default: data URL and raw code), raw, or none",
                "schema": {"enum": ["png", "raw", "none"]},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "one page of this many accounts, in creation order",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "the nextCursor of the previous page (with limit)",
                "schema": _STR,
            },
        ],
        "responses": {"200": _json({"type": "object"}), **_errors(400, 401)},
    },
    ("get", "/api/whatsapp/accounts/{account_id}"): {
        "summary": "One account",
        "parameters": [_ID],
        "responses": {"200": _json(_OBJ), **_errors(401, 404)},
    },
    ("delete", "/api/whatsapp/accounts/{account_id}"): {
        "summary": "Delete an account: log the device out and wipe its session",
        "parameters": [_ID],
        "responses": {"200": _json(_OBJ), **_errors(401, 404, 409, 503)},
    },
    ("get", "/api/status/dashboard"): {
        "summary": "Service, storage, every account (phones masked) and a summary",
        "responses": {"200": _json(_OBJ), **_errors(401)},
    },
    ("get", "/api/whatsapp/qr/{account_id}"): {
        "summary": "HTML page with the account's QR code, refreshing until connected",
        "parameters": [_ID],
        "responses": {"200": {"description": "HTML page"}, **_errors(401, 404)},
    },
    ("get", "/api/whatsapp/qr-visual"): {
        "summary": "HTML page with every QR code waiting for a scan",
        "responses": {"200": {"description": "HTML page"}, **_errors(401)},
    },
    ("post", "/api/whatsapp/regenerate-qr/{account_id}"): {
        "summary": "Start linking again (after logout, QR timeout or disconnect)",
        "parameters": [_ID],
        "responses": {"200": _json(_OBJ), **_errors(401, 404, 409, 503)},
    },
    ("post", "/api/whatsapp/disconnect/{account_id}"): {
        "summary": "Stop the session and keep it (suspend); regenerate-qr resumes",
        "parameters": [_ID],
        "responses": {"200": _json(_OBJ), **_errors(401, 404, 409, 503)},
    },
    ("post", "/api/whatsapp/send-message"): {
        "summary": "Send a text through the outbox (idempotent by idempotencyKey)",
        "requestBody": _body(
            {
                "accountId": _STR,
                "to": {"type": "string", "description": "E.164 phone or a WhatsApp JID"},
                "message": _STR,
                "idempotencyKey": _STR,
            },
            ["accountId", "to", "message"],
        ),
        "responses": {
            "200": _json(_OBJ, "Sent, queued (queued: true), or a repeat of an earlier request"),
            **_errors(400, 401, 404, 413),
        },
    },
    ("get", "/api/whatsapp/messages"): {
        "summary": "Threads with their newest messages",
        "parameters": [
            {"name": "accountId", "in": "query", "schema": _STR},
            {"name": "threadId", "in": "query", "schema": _STR},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 50}},
        ],
        "responses": {"200": _json(_OBJ), **_errors(400, 401, 404)},
    },
    ("get", "/api/whatsapp/outbox/{item_id}"): {
        "summary": "One outbox item and its state",
        "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": _STR}],
        "responses": {"200": _json(_OBJ), **_errors(401, 404)},
    },
    ("get", "/health"): {
        "summary": "Liveness (no token)",
        "security": [],
        "responses": {"200": _json(_OBJ)},
    },
    ("get", "/readyz"): {
        "summary": "Readiness (no token)",
        "security": [],
        "responses": {"200": _json(_OBJ), "503": _json(_OBJ, "Starting")},
    },
    ("get", "/metrics"): {
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "text"}},
    },
    ("get", "/openapi.json"): {"summary": "This document", "responses": {"200": _json(_OBJ)}},
    # The simulator's control API: served only with the embedded sim (no token).
    ("post", "/sim/scan"): {
        "summary": "Simulated phone: scan a QR code, linking the device showing it",
        "security": [],
        "requestBody": _body({"qr": _STR, "phone": _STR}, ["qr", "phone"]),
        "responses": {"200": _json(_OBJ), **_errors(400, 404, 409)},
    },
    ("post", "/sim/pair"): {
        "summary": "Simulated phone: enter a pairing code",
        "security": [],
        "requestBody": _body({"code": _STR, "phone": _STR}, ["code", "phone"]),
        "responses": {"200": _json(_OBJ), **_errors(400, 404, 409)},
    },
    ("post", "/sim/messages"): {
        "summary": "Simulated contact: send a message to a linked account",
        "security": [],
        "requestBody": _body(
            {
                "from": _STR,
                "to": _STR,
                "text": _STR,
                "addressing": {"enum": ["pn", "lid", "lid_only"]},
            },
            ["from", "to", "text"],
        ),
        "responses": {"200": _json(_OBJ), **_errors(400, 404, 409)},
    },
    ("get", "/sim/messages"): {
        "summary": "What a simulated phone received",
        "security": [],
        "parameters": [{"name": "phone", "in": "query", "required": True, "schema": _STR}],
        "responses": {"200": _json(_OBJ), **_errors(400)},
    },
    ("post", "/sim/faults"): {
        "summary": "Inject a fault: " + ", ".join(SIM_FAULTS),
        "security": [],
        "requestBody": _body(
            {
                "phone": _STR,
                "kind": {"enum": list(SIM_FAULTS)},
                "seconds": {"type": "number"},
            },
            ["phone", "kind"],
        ),
        "responses": {"200": _json(_OBJ), **_errors(400, 404)},
    },
    ("get", "/sim/devices"): {
        "summary": "The devices linked to a simulated phone",
        "security": [],
        "parameters": [{"name": "phone", "in": "query", "required": True, "schema": _STR}],
        "responses": {"200": _json(_OBJ), **_errors(400)},
    },
    ("post", "/sim/read"): {
        "summary": "Simulated phone: read its messages (all, or one account's): read receipts",
        "security": [],
        "requestBody": _body({"phone": _STR, "from": _STR}, ["phone"]),
        "responses": {"200": _json(_OBJ), **_errors(400, 409)},
    },
    ("post", "/sim/numbers"): {
        "summary": "Mark a phone number as on / not on WhatsApp",
        "security": [],
        "requestBody": _body(
            {"phone": _STR, "registered": {"type": "boolean"}}, ["phone", "registered"]
        ),
        "responses": {"200": _json(_OBJ), **_errors(400, 409)},
    },
    ("get", "/sim/lid"): {
        "summary": "The LID jid (<digits>@lid) of a simulated phone",
        "security": [],
        "parameters": [{"name": "phone", "in": "query", "required": True, "schema": _STR}],
        "responses": {"200": _json(_OBJ), **_errors(400, 409)},
    },
    ("get", "/sim/status"): {
        "summary": "The simulator's counters",
        "security": [],
        "responses": {"200": _json(_OBJ)},
    },
}

_SCHEMAS = {
    "Error": {
        "type": "object",
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "properties": {"code": _STR, "message": _STR},
                "required": ["code", "message"],
            },
        },
    },
    "Account": {
        "type": "object",
        "properties": {
            "id": _STR,
            "name": _STR,
            "phone": _STR,
            "status": _STR,
            "phase": _STR,
            "qr": {"type": ["string", "null"]},
            "qrCode": {"type": ["string", "null"]},
            "pairingCode": {"type": ["string", "null"]},
            "createdAt": _STR,
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
        "info": {"title": "wafleet API", "version": __version__},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
