"""Minting signed links to the QR pages (``links.py`` says why and how they are signed).

``POST /api/whatsapp/qr/{account_id}/link`` and ``POST /api/whatsapp/qr-visual/link``,
with the admin token; an optional JSON body ``{"ttlSeconds": N}`` asks for a lifetime
other than WAFLEET_LINK_TTL (up to WAFLEET_LINK_MAX_TTL). The answer's ``url`` opens the
page in a browser, without the token, until ``expiresAt``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet.core.http import ApiError, read_json_object
from wafleet.core.models import iso
from wafleet_api.links import QR_VISUAL_PATH, LinkSigner, qr_page_path
from wafleet_api.principal import require
from wafleet_api.routes_accounts import load_account, settings_of

MIN_TTL = 60  # seconds; a page refreshes every 5 s, a shorter link would hardly open it


def signer_of(request: Request) -> LinkSigner:
    links: LinkSigner = request.app.state.links
    return links


async def requested_ttl(request: Request) -> int:
    """The lifetime asked for in the optional body, else the configured default."""
    settings = settings_of(request)
    declared = request.headers.get("content-length")
    if "transfer-encoding" not in request.headers and declared in (None, "0"):
        return settings.link_ttl
    data = await read_json_object(request, settings.max_body_bytes)
    value = data.get("ttlSeconds")
    if value is None:
        return settings.link_ttl
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 900.0 is an integer to JSON Schema, so it is one here too
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "invalid_field", "field 'ttlSeconds' must be a whole number of seconds")
    if not MIN_TTL <= value <= settings.link_max_ttl:
        raise ApiError(
            400,
            "invalid_field",
            f"field 'ttlSeconds' must be {MIN_TTL}..{settings.link_max_ttl} (WAFLEET_LINK_MAX_TTL)",
        )
    return value


def link_answer(request: Request, path: str, ttl: int, **extra: Any) -> Response:
    relative, expires = signer_of(request).mint(path, ttl)
    base = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "success": True,
            **extra,
            "url": base + relative,
            "path": relative,
            "expiresAt": iso(datetime.fromtimestamp(expires, UTC)),
            "ttlSeconds": ttl,
        }
    )


async def mint_account_link(request: Request) -> Response:
    account = await load_account(request, "read")  # 404 for an unknown account
    ttl = await requested_ttl(request)
    return link_answer(request, qr_page_path(account.id), ttl, accountId=account.id)


async def mint_visual_link(request: Request) -> Response:
    if not require(request, "read").every_account:
        raise ApiError(
            403,
            "account_not_allowed",
            "the qr-visual page shows every account; this API key is limited to some: "
            "mint a link per account with POST /api/whatsapp/qr/{account_id}/link",
        )
    ttl = await requested_ttl(request)
    return link_answer(request, QR_VISUAL_PATH, ttl)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/whatsapp/qr/{account_id}/link", mint_account_link, methods=["POST"]),
        Route("/api/whatsapp/qr-visual/link", mint_visual_link, methods=["POST"]),
    ]


# ----- the OpenAPI description of these routes (merged into openapi.py's OPERATIONS) -----
_ERROR = {"$ref": "#/components/schemas/Error"}
_ERROR_TEXT = {
    400: "Bad input; the message says what to fix (e.g. ttlSeconds out of range)",
    401: "Missing or wrong bearer token (a ?token= in the URL is refused too)",
    403: "An API key without the read scope, or not for this account (for qr-visual: "
    "not for every account)",
    404: "Unknown account",
    413: "Body too large",
    503: "The cluster API cannot answer now; retry after the Retry-After header",
}
_ACCOUNT_ID = {
    "name": "account_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 253},
    "example": "wa-abcdefghijklmnopabcd",
}
_BODY = {
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
_SIGNED_PATH = r"^/api/whatsapp/qr(-visual|/[^/?]+)\?exp=[1-9][0-9]{0,11}&sig=[A-Za-z0-9_-]{43}$"


def _link_schema(with_account: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "success": {"const": True},
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
        properties["accountId"] = {"type": "string"}
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
    }


def _operation(summary: str, with_account: bool) -> dict[str, Any]:
    codes = (400, 401, 403, 404, 413, 503) if with_account else (400, 401, 403, 413)
    link = {
        "description": "The signed link",
        "content": {"application/json": {"schema": _link_schema(with_account)}},
    }
    errors = {
        str(code): {
            "description": _ERROR_TEXT[code],
            "content": {"application/json": {"schema": _ERROR}},
        }
        for code in codes
    }
    operation: dict[str, Any] = {
        "summary": summary,
        "requestBody": _BODY,
        "responses": {"200": link, **errors},
    }
    if with_account:
        operation["parameters"] = [_ACCOUNT_ID]
    return operation


OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/whatsapp/qr/{account_id}/link"): _operation(
        "Mint a signed, expiring link that opens this account's QR page without the token",
        with_account=True,
    ),
    ("post", "/api/whatsapp/qr-visual/link"): _operation(
        "Mint a signed, expiring link that opens the qr-visual page without the token",
        with_account=False,
    ),
}

# What the two QR pages' GET operations gain: the link's query parameters, and the HTML
# answers to a link that expired (401) or is not genuine (403).
PAGE_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "exp",
        "in": "query",
        "required": False,
        "description": "Expiry of a signed link (unix seconds), from the mint route; "
        "ignored when an Authorization header is sent",
        "schema": {"type": "string"},
    },
    {
        "name": "sig",
        "in": "query",
        "required": False,
        "description": "Signature of a signed link, from the mint route; "
        "ignored when an Authorization header is sent",
        "schema": {"type": "string"},
    },
]
PAGE_RESPONSES: dict[str, Any] = {
    "401": {
        "description": "No or wrong bearer token (JSON), or an expired signed link (HTML page)",
        "content": {"application/json": {"schema": _ERROR}, "text/html": {"schema": {}}},
    },
    "403": {
        "description": "A signed link that is not genuine or is for another page (HTML "
        "page), or an API key without the read scope for the account (JSON)",
        "content": {"application/json": {"schema": _ERROR}, "text/html": {"schema": {}}},
    },
}
