"""Onboarding: the add-account form, then the account's live link page (its QR code as it
rotates, with a countdown, or its pairing code) until it is connected."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wafleet.core.http import ApiError
from wafleet.core.models import Account
from wafleet.core.phases import Phase
from wafleet_api.console import paths
from wafleet_api.console.actions import add_account, for_people
from wafleet_api.console.guard import Visitor, console_route, context, is_htmx
from wafleet_api.console.state import console_of
from wafleet_api.principal import require
from wafleet_api.qr import qr_data_url
from wafleet_api.routes_accounts import load_account, png_ready

POLL_SECONDS = 2
LIVE = "fragments/link_live.html"
# Phases that wait for a person: the page offers a new QR code (regenerate-qr).
STUCK = frozenset(
    {Phase.QR_TIMEOUT, Phase.LOGGED_OUT, Phase.PASSKEY_REQUIRED, Phase.SUSPENDED}
    | {Phase.REPLACED, Phase.FAILED}
)


def stage(account: Account) -> str:
    """What the link page shows: linked, qr, code, stuck or waiting."""
    status = account.status
    if status.phase == Phase.CONNECTED:
        return "linked"
    if status.phase == Phase.QR_READY and status.qr:
        return "qr"
    if status.phase == Phase.PAIRING_CODE_READY and status.pairing_code:
        return "code"
    return "stuck" if status.phase in STUCK else "waiting"


async def link_values(request: Request, account: Account) -> dict[str, Any]:
    await png_ready(request, [account])  # rendered off the event loop, once per code
    status = account.status
    return {
        "account": account,
        "status": status,
        "stage": stage(account),
        "qr_url": qr_data_url(status.qr) if status.qr else "",
        "poll_seconds": POLL_SECONDS,
    }


def _form_page(
    request: Request, visitor: Visitor, error: str = "", status_code: int = 200
) -> Response:
    values = context(visitor, title="Add an account", error=error, form=visitor.form)
    return console_of(request).renderer.page(request, "add_account.html", values, status_code)


@console_route()
async def new_account_form(request: Request, visitor: Visitor) -> Response:
    require(request, "manage")
    return _form_page(request, visitor)


@console_route()
async def create_account(request: Request, visitor: Visitor) -> Response:
    try:
        account, _ = await add_account(request, visitor.form)
    except ApiError as exc:
        if exc.status == 403:
            raise
        return _form_page(request, visitor, for_people(exc.message), exc.status)
    return RedirectResponse(paths.account_path(account.id, "link"), status_code=303)


@console_route()
async def link_page(request: Request, visitor: Visitor) -> Response:
    account = await load_account(request, "read")
    renderer = console_of(request).renderer
    values = context(visitor, **await link_values(request, account), title="Link a device")
    values["live"], _ = renderer.fragment_html(request, LIVE, values)
    return renderer.page(request, "link.html", values)


@console_route()
async def link_live(request: Request, visitor: Visitor) -> Response:
    account_id = request.path_params["account_id"]
    if not is_htmx(request):
        return RedirectResponse(paths.account_path(account_id, "link"), status_code=303)
    account = await load_account(request, "read")
    values = context(visitor, **await link_values(request, account))
    return console_of(request).renderer.fragment(request, LIVE, values)
