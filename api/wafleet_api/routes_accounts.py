"""Onboarding and account routes (legacy paths): add, list, dashboard, QR, actions."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet import __version__
from wafleet.core.apikeys import Scope
from wafleet.core.http import ApiError, field_name, field_str, read_json_object
from wafleet.core.ids import account_id_for, legacy_account_id
from wafleet.core.models import Account, AccountSpec, iso
from wafleet.core.phones import InvalidPhone, normalize_phone
from wafleet.core.settings import Settings
from wafleet_api.backend import AccountBackend, AccountNotFound, ActionRefused
from wafleet_api.listing import ListOptions, page, qr_form
from wafleet_api.pages import qr_page, qr_visual_page
from wafleet_api.principal import require, visible
from wafleet_api.qr import QrRenderer, codes_of
from wafleet_api.view_cache import ViewCache, encode
from wafleet_api.views import account_view, summary

LOGINS = ("qr", "pairingCode")
MAX_PHONE = 40  # characters of a phone field, as typed
MAX_NAME = 100


def backend_of(request: Request) -> AccountBackend:
    backend: AccountBackend = request.app.state.backend
    return backend


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def not_found(account_id: str) -> ApiError:
    return ApiError(404, "account_not_found", f"no account with id '{account_id[:64]}'")


async def load_account(request: Request, scope: Scope) -> Account:
    """The path's account, if the caller holds ``scope`` for it (403 first, then 404)."""
    account_id = request.path_params["account_id"]
    account = await backend_of(request).get(account_id)  # by its id, or its wafleet name
    require(request, scope, account_id if account is None else account.id)
    if account is None:
        raise not_found(account_id)
    return account


def parse_phone(value: Any, settings: Settings, name: str = "phone") -> str:
    try:
        return normalize_phone(value, settings.default_region)
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"field '{name}': {exc}") from None


def new_account_id(phone: str, settings: Settings) -> str:
    """The id a new account gets: the wafleet id, or the legacy one (WAFLEET_ACCOUNT_IDS)."""
    if settings.account_ids == "legacy":
        return legacy_account_id(phone, settings.legacy_env)
    return account_id_for(phone, settings.id_salt)


async def add_from_fields(request: Request, data: dict[str, Any]) -> tuple[Account, bool]:
    """The account for ``data``'s phone (a JSON body, or the console's form): created, or
    the one that has that phone already (``created`` False)."""
    require(request, "manage")
    settings = settings_of(request)
    raw_phone = field_str(data, "phone", required=True, max_length=MAX_PHONE)
    phone = parse_phone(raw_phone, settings)
    name = field_name(data, "name", max_length=MAX_NAME)
    login = field_str(data, "login", required=False, max_length=20, default="qr")
    if login not in LOGINS:
        raise ApiError(400, "invalid_field", "field 'login' must be 'qr' or 'pairingCode'")
    resource = account_id_for(phone, settings.id_salt)
    backend = backend_of(request)
    existing = await backend.get(resource)  # the same phone, whatever id style it got
    spec = (
        existing.spec
        if existing is not None
        else AccountSpec(
            id=new_account_id(phone, settings),
            resource_name=resource,
            phone=phone,
            name=name or f"Account {phone[-4:]}",
            login="pairingCode" if login == "pairingCode" else "qr",
        )
    )
    require(request, "manage", spec.id)
    try:
        return await backend.add(spec)
    except ActionRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from None


async def add_account(request: Request) -> Response:
    require(request, "manage")
    data = await read_json_object(request, settings_of(request).max_body_bytes)
    account, created = await add_from_fields(request, data)
    return JSONResponse(
        {"success": True, "created": created, "account": account_view(account)},
        status_code=200,  # the legacy server's code; "created" tells new from existing
    )


def views_of(request: Request) -> ViewCache:
    views: ViewCache = request.app.state.views
    return views


async def png_ready(request: Request, accounts: Sequence[Account]) -> None:
    """Render the QR PNGs of ``accounts`` not rendered yet (off the event loop)."""
    renderer: QrRenderer = request.app.state.qr_renderer
    await renderer.ready(codes_of(accounts))


def json_bytes(request: Request, raw: bytes, gzipped: bytes | None = None) -> Response:
    """Encoded JSON; the gzipped form when the client takes it and it was made."""
    if gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(gzipped, media_type="application/json", headers=headers)
    return Response(raw, media_type="application/json")


def wants_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "")


async def list_accounts(request: Request) -> Response:
    principal = require(request, "read")
    options = ListOptions.of(request.query_params)
    snapshot = backend_of(request).snapshot()
    views = views_of(request)
    views.prune(snapshot)
    if not principal.every_account:
        snapshot = snapshot.only(principal.allows)
    chosen, next_cursor = page(snapshot, options)
    if options.qr == "png":
        await png_ready(request, chosen)

    def build() -> bytes:
        more = b"" if options.limit is None else b',"nextCursor":' + encode(next_cursor)
        array = views.accounts(chosen, options.qr)
        return b'{"success":true,"accounts":' + array + b',"cached":false' + more + b"}"

    who = None if principal.every_account else principal.label
    key = ("accounts", who, options.qr, options.limit, options.after, next_cursor)
    body = views.answer(key, chosen, build, wants_gzip(request))
    return json_bytes(request, body.raw, body.gzipped)


async def get_account(request: Request) -> Response:
    qr = qr_form(request.query_params)
    account = await load_account(request, "read")
    if qr == "png":
        await png_ready(request, [account])
    raw = b'{"success":true,"account":' + views_of(request).account(account, qr) + b"}"
    return json_bytes(request, raw)


async def dashboard(request: Request) -> Response:
    settings = settings_of(request)
    principal = require(request, "read")
    accounts = visible(request, backend_of(request).snapshot().accounts)
    await png_ready(request, accounts)
    views = views_of(request)
    started: float = request.app.state.started_at
    head = {
        "timestamp": iso(datetime.now(UTC)),
        "service": {
            "status": "healthy",
            "uptime": int(time.monotonic() - started),
            "version": __version__,
        },
        "storage": {
            "path": str(settings.sessions_dir),
            "writable": request.app.state.storage_writable(),
            "totalAccounts": len(accounts),
        },
    }
    key = ("dashboard", None if principal.every_account else principal.label)
    array = views.answer(key, accounts, lambda: views.dashboard_array(accounts), False)
    raw = (
        encode(head)[:-1]
        + b',"accounts":'
        + array.raw
        + b',"summary":'
        + encode(summary(accounts))
        + b"}"
    )
    return json_bytes(request, raw)  # GZipMiddleware compresses it


async def qr_html(request: Request) -> Response:
    account = await load_account(request, "read")
    await png_ready(request, [account])
    return HTMLResponse(qr_page(account))


async def qr_visual(request: Request) -> Response:
    accounts = visible(request, backend_of(request).snapshot().accounts)
    await png_ready(request, accounts)
    return HTMLResponse(qr_visual_page(list(accounts)))


async def regenerate_qr(request: Request) -> Response:
    account = await load_account(request, "manage")
    try:
        await backend_of(request).regenerate_qr(account.id)
    except AccountNotFound:
        raise not_found(account.id) from None
    except ActionRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return JSONResponse(
        {"success": True, "accountId": account.id, "message": "a new QR code is on its way"}
    )


async def disconnect(request: Request) -> Response:
    account = await load_account(request, "manage")
    try:
        await backend_of(request).disconnect(account.id)
    except AccountNotFound:
        raise not_found(account.id) from None
    except ActionRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return JSONResponse(
        {
            "success": True,
            "accountId": account.id,
            "tsDisconnect": int(time.time() * 1000),
            "reason": "user_disconnect",
        }
    )


async def delete_account(request: Request) -> Response:
    account = await load_account(request, "manage")
    try:
        await backend_of(request).delete(account.id)
    except AccountNotFound:
        raise not_found(account.id) from None
    except ActionRefused as exc:
        raise ApiError(409, "unlink_pending", str(exc)) from None
    return JSONResponse({"success": True, "accountId": account.id, "deleted": True})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/whatsapp/add-account", add_account, methods=["POST"]),
        Route("/api/whatsapp/accounts", list_accounts, methods=["GET"]),
        Route("/api/whatsapp/accounts/{account_id}", get_account, methods=["GET"]),
        Route("/api/whatsapp/accounts/{account_id}", delete_account, methods=["DELETE"]),
        Route("/api/status/dashboard", dashboard, methods=["GET"]),
        Route("/api/whatsapp/qr/{account_id}", qr_html, methods=["GET"]),
        Route("/api/whatsapp/qr-visual", qr_visual, methods=["GET"]),
        Route("/api/whatsapp/regenerate-qr/{account_id}", regenerate_qr, methods=["POST"]),
        Route("/api/whatsapp/disconnect/{account_id}", disconnect, methods=["POST"]),
    ]
