"""The OpenAPI description of the access routes: signed QR links and scoped API keys."""

from __future__ import annotations

from typing import Any

from wafleet.core.apikeys import MAX_ACCOUNTS, MAX_NAME, SCOPE_MEANING, SCOPES, SECRET_PATTERN
from wafleet.core.http import NAME_PATTERN
from wafleet.core.ids import ANY_ACCOUNT_ID_RE
from wafleet_api.openapi_types import ERROR, STR, errors, ok
from wafleet_api.routes_keys import KEY_ID
from wafleet_api.routes_links import MIN_TTL

_ACCOUNT_ID = {
    "name": "account_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 253},
    "example": "wa-abcdefghijklmnopabcd",
}
_SIGNED_PATH = r"^/api/whatsapp/qr(-visual|/[^/?]+)\?exp=[1-9][0-9]{0,11}&sig=[A-Za-z0-9_-]{43}$"
_LINK_BODY = {
    "required": False,
    "description": "Optional; without a body the link lasts WAFLEET_LINK_TTL (900 s).",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "ttlSeconds": {
                        "type": ["integer", "null"],  # null: the default, like no field
                        "minimum": MIN_TTL,
                        "maximum": 86400,
                        "default": 900,
                        "description": "Lifetime of the link in seconds; the maximum is "
                        "WAFLEET_LINK_MAX_TTL (86400 unless configured)",
                        "examples": [900, 3600],
                    }
                },
                "examples": [{}, {"ttlSeconds": 3600}],
            }
        }
    },
}


def _answer(**properties: Any) -> dict[str, Any]:
    fields = {"success": {"const": True}, **properties}
    return {"type": "object", "properties": fields, "required": sorted(fields)}


def _link_operation(summary: str, with_account: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "url": {
            "type": "string",
            "format": "uri",
            "description": "Opens the page in a browser, without the token, until expiresAt",
        },
        "path": {"type": "string", "pattern": _SIGNED_PATH, "description": "url without host"},
        "expiresAt": {"type": "string", "format": "date-time"},
        "ttlSeconds": {"type": "integer", "minimum": MIN_TTL},
    }
    if with_account:
        fields["accountId"] = STR
    codes = (400, 401, 403, 404, 413, 503) if with_account else (400, 401, 403, 413)
    operation: dict[str, Any] = {
        "summary": summary,
        "requestBody": _LINK_BODY,
        "responses": {"200": ok(_answer(**fields), "The signed link"), **errors(*codes)},
    }
    if with_account:
        operation["parameters"] = [_ACCOUNT_ID]
    return operation


# What the two QR pages' GET operations gain: the link's query parameters, and the HTML
# answers to a link that expired (401) or is not genuine (403).
PAGE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{what} of a signed link, from the mint route; "
        "ignored when an Authorization header is sent",
        "schema": STR,
    }
    for name, what in (("exp", "Expiry (unix seconds)"), ("sig", "Signature"))
]
PAGE_RESPONSES: dict[str, Any] = {
    "401": {
        "description": "No or wrong bearer token (JSON), or a signed link that expired, is "
        "not genuine or is for another page (HTML page)",
        "content": {"application/json": {"schema": ERROR}, "text/html": {"schema": {}}},
    },
    "403": {
        "description": "An API key without the read scope, or not for this account",
        "content": {"application/json": {"schema": ERROR}},
    },
}

_KEY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": KEY_ID.pattern},
        "name": STR,
        "scopes": {"type": "array", "items": {"enum": list(SCOPES)}, "uniqueItems": True},
        "accountIds": {
            "description": "The accounts the key may act on; null: every account",
            "type": ["array", "null"],
            "items": STR,
        },
        "createdAt": {"type": "string", "format": "date-time"},
        "revokedAt": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["id", "name", "scopes", "accountIds", "createdAt", "revokedAt"],
}
_NEW_KEY = {
    "type": "object",
    "properties": {
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME,
            "allOf": [{"pattern": NAME_PATTERN}, {"pattern": r"\S"}],
            "description": "For people: one line of visible text (no control, bidi or "
            "invisible format characters), not only spaces",
            "examples": ["billing app"],
        },
        "scopes": {
            "type": "array",
            "minItems": 1,
            "items": {"enum": list(SCOPES)},
            "description": "; ".join(f"{s}: {SCOPE_MEANING[s]}" for s in SCOPES),
            "examples": [["read", "send"]],
        },
        "accountIds": {
            "type": ["array", "null"],
            "minItems": 1,
            "maxItems": MAX_ACCOUNTS,
            "items": {"type": "string", "pattern": ANY_ACCOUNT_ID_RE.pattern},
            "description": "Leave out (or null) for every account, present and future",
            "examples": [["wa-abcdefghijklmnopabcd"]],
        },
    },
    "required": ["name", "scopes"],
}
_KEY_ID_PARAMETER = {
    "name": "key_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": KEY_ID.pattern},
    "example": "0123456789ab",
}

ACCESS_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/whatsapp/qr/{account_id}/link"): _link_operation(
        "Mint a signed, expiring link that opens this account's QR page without the token",
        with_account=True,
    ),
    ("post", "/api/whatsapp/qr-visual/link"): _link_operation(
        "Mint a signed, expiring link that opens the qr-visual page without the token",
        with_account=False,
    ),
    ("post", "/api/keys"): {
        "summary": "Create a scoped API key (admin token only); the secret is shown once",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _NEW_KEY,
                    "example": {"name": "billing app", "scopes": ["read", "send"]},
                }
            },
        },
        "responses": {
            "201": ok(
                _answer(key=_KEY, secret={"type": "string", "pattern": SECRET_PATTERN}),
                "The key, and its secret: send it as 'Authorization: Bearer <secret>'",
            ),
            **errors(400, 401, 403, 413),
        },
    },
    ("get", "/api/keys"): {
        "summary": "List the API keys, revoked ones included (never their secrets)",
        "responses": {
            "200": ok(_answer(keys={"type": "array", "items": _KEY}), "The keys"),
            **errors(401, 403),
        },
    },
    ("delete", "/api/keys/{key_id}"): {
        "summary": "Revoke an API key (at once on this API pod, within 5 s on the others)",
        "parameters": [_KEY_ID_PARAMETER],
        "responses": {
            "200": ok(_answer(key=_KEY), "The revoked key"),
            **errors(401, 403, 404),
        },
    },
}
