"""Scoped API keys, managed by the admin: create (the secret is shown once), list, revoke."""

from __future__ import annotations

import re
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet.core.apikeys import (
    MAX_ACCOUNTS,
    MAX_NAME,
    SCOPES,
    SECRET_PATTERN,
    ApiKey,
    Scope,
    new_key,
)
from wafleet.core.apikeys import (
    SCOPE_MEANING as SCOPE_TEXT,
)
from wafleet.core.http import NAME_PATTERN, ApiError, field_name, field_str, read_json_object
from wafleet.core.models import iso, utcnow
from wafleet.core.settings import Settings
from wafleet_api.principal import KeyResolver, require_admin

ACCOUNT_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_SCOPES = ", ".join(SCOPES)


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": [s for s in SCOPES if s in key.scopes],
        "accountIds": None if key.account_ids is None else sorted(key.account_ids),
        "createdAt": iso(key.created_at),
        "revokedAt": iso(key.revoked_at),
    }


def resolver_of(request: Request) -> KeyResolver:
    resolver: KeyResolver = request.app.state.keys
    return resolver


def _scopes(data: dict[str, Any]) -> frozenset[Scope]:
    value = data.get("scopes")
    if value is None:
        raise ApiError(400, "missing_field", f"field 'scopes' is required: a list of {_SCOPES}")
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        message = f"field 'scopes' must be a non-empty list of {_SCOPES}"
        raise ApiError(400, "invalid_field", message)
    unknown = [s for s in value if s not in SCOPES]
    if unknown:
        message = f"field 'scopes': unknown scope '{unknown[0][:20]}'; use {_SCOPES}"
        raise ApiError(400, "invalid_field", message)
    return frozenset(cast(list[Scope], value))


def _account_ids(data: dict[str, Any]) -> frozenset[str] | None:
    value = data.get("accountIds")
    if value is None:
        return None  # every account
    if not isinstance(value, list) or not value or len(value) > MAX_ACCOUNTS:
        message = f"field 'accountIds' must be a list of 1 to {MAX_ACCOUNTS} account ids"
        raise ApiError(400, "invalid_field", message + ", or left out for every account")
    for item in value:
        if not isinstance(item, str) or not ACCOUNT_ID.match(item):
            raise ApiError(
                400,
                "invalid_field",
                "field 'accountIds' holds something that is not an account id "
                "(lower-case letters, digits and '-', as the API returns them)",
            )
    return frozenset(value)


async def create_key(request: Request) -> Response:
    require_admin(request)
    settings: Settings = request.app.state.settings
    data = await read_json_object(request, settings.max_body_bytes)
    field_str(data, "name", required=True, max_length=MAX_NAME)  # present and not blank
    name = field_name(data, "name", max_length=MAX_NAME)
    key, secret = new_key(name, _scopes(data), _account_ids(data))
    await resolver_of(request).store.create(key)
    body = {"success": True, "key": key_view(key), "secret": secret}
    return JSONResponse(body, status_code=201)


async def list_keys(request: Request) -> Response:
    require_admin(request)
    keys = await resolver_of(request).store.list()
    return JSONResponse({"success": True, "keys": [key_view(k) for k in keys]})


async def revoke_key(request: Request) -> Response:
    require_admin(request)
    key_id = request.path_params["key_id"]
    resolver = resolver_of(request)
    key = await resolver.store.revoke(key_id, utcnow()) if KEY_ID.match(key_id) else None
    if key is None:
        raise ApiError(404, "key_not_found", f"no API key with id '{key_id[:64]}'")
    resolver.forget(key_id)
    return JSONResponse({"success": True, "key": key_view(key)})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/keys", create_key, methods=["POST"]),
        Route("/api/keys", list_keys, methods=["GET"]),
        Route("/api/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]


# ----- the OpenAPI description of these routes (merged into openapi.py's OPERATIONS) -----
_ERROR = {"$ref": "#/components/schemas/Error"}
_TEXT = {
    400: "Bad input; the message says what to fix",
    401: "Missing or wrong bearer token",
    403: "Only the admin token manages API keys (code admin_only)",
    404: "No API key with this id",
    413: "Body too large",
}
_KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": KEY_ID.pattern},
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"enum": list(SCOPES)}, "uniqueItems": True},
        "accountIds": {
            "description": "The accounts the key may act on; null: every account",
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
        },
        "createdAt": {"type": "string", "format": "date-time"},
        "revokedAt": {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    },
    "required": ["id", "name", "scopes", "accountIds", "createdAt", "revokedAt"],
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _json(_ERROR, _TEXT[code]) for code in codes}


def _answer(**properties: Any) -> dict[str, Any]:
    body = {"success": {"const": True}, **properties}
    return {"type": "object", "properties": body, "required": sorted(body)}


_CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": MAX_NAME,
                        "allOf": [{"pattern": NAME_PATTERN}, {"pattern": r"\S"}],
                        "description": "For people: one line of visible text (no control, "
                        "bidi or invisible format characters), not only spaces",
                        "examples": ["billing app"],
                    },
                    "scopes": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": list(SCOPES)},
                        "description": "read: "
                        + SCOPE_TEXT["read"]
                        + "; send: "
                        + SCOPE_TEXT["send"]
                        + "; manage: "
                        + SCOPE_TEXT["manage"],
                        "examples": [["read", "send"]],
                    },
                    "accountIds": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_ACCOUNTS,
                        "items": {"type": "string", "pattern": ACCOUNT_ID.pattern},
                        "description": "Leave out for every account, present and future",
                        "examples": [["wa-abcdefghijklmnopabcd"]],
                    },
                },
                "required": ["name", "scopes"],
                "examples": [{"name": "billing app", "scopes": ["read", "send"]}],
            }
        }
    },
}

OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/keys"): {
        "summary": "Create a scoped API key (admin token only); the secret is shown once",
        "requestBody": _CREATE_BODY,
        "responses": {
            "201": _json(
                _answer(key=_KEY_SCHEMA, secret={"type": "string", "pattern": SECRET_PATTERN}),
                "The key, and its secret: send it as 'Authorization: Bearer <secret>'",
            ),
            **_errors(400, 401, 403, 413),
        },
    },
    ("get", "/api/keys"): {
        "summary": "List the API keys, revoked ones included (never their secrets)",
        "responses": {
            "200": _json(_answer(keys={"type": "array", "items": _KEY_SCHEMA}), "The keys"),
            **_errors(401, 403),
        },
    },
    ("delete", "/api/keys/{key_id}"): {
        "summary": "Revoke an API key (at once on this API pod, within 5 s on the others)",
        "parameters": [
            {
                "name": "key_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": KEY_ID.pattern},
                "example": "0123456789ab",
            }
        ],
        "responses": {
            "200": _json(_answer(key=_KEY_SCHEMA), "The revoked key"),
            **_errors(401, 403, 404),
        },
    },
}
