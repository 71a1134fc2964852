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
from wafleet_api.principal import require_every_account
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
    require_every_account(
        request,
        "the qr-visual page shows every account (mint a link per account with "
        "POST /api/whatsapp/qr/{account_id}/link)",
    )
    ttl = await requested_ttl(request)
    return link_answer(request, QR_VISUAL_PATH, ttl)


def routes() -> list[BaseRoute]:
    return [
        Route("/api/whatsapp/qr/{account_id}/link", mint_account_link, methods=["POST"]),
        Route("/api/whatsapp/qr-visual/link", mint_visual_link, methods=["POST"]),
    ]
