"""One account: its status, conversations and history (each polled by htmx), and what a
person can do to it: send a message, a new QR code, disconnect, delete (confirmed on a
page of its own, which works without JavaScript).

Every action is a plain form POST answered with a redirect back (no double submit on
reload); a refusal (409: connected, unlink pending) is the page again, saying why.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from wafleet.core.http import ApiError, is_token
from wafleet.core.ids import thread_id
from wafleet.core.models import Account, Thread
from wafleet_api.console import paths
from wafleet_api.console.actions import account_action, for_people, send_message
from wafleet_api.console.guard import Visitor, console_route, context, is_htmx
from wafleet_api.console.routes_fleet import shard_label
from wafleet_api.console.state import console_of
from wafleet_api.routes_accounts import backend_of, load_account

THREADS = 20
MAX_JID = 100
MESSAGES = 100
POLL_STATUS = 3
POLL_MESSAGES = 5
POLL_HISTORY = 10
DONE = {
    "sent": "Message queued. It shows in the conversation once WhatsApp has it.",
    "duplicate": "That message was sent already (the same form was submitted twice).",
    "regenerate-qr": "A new QR code is on its way.",
    "disconnect": "Disconnected. The session is kept: “Resume” connects it again.",
}
FRAGMENTS = {
    "status": "fragments/account_status.html",
    "messages": "fragments/conversation.html",
    "history": "fragments/history.html",
}


def _selected_jid(request: Request) -> str | None:
    """The conversation asked for (``?thread=<jid>``); None for none or a malformed one."""
    raw = request.query_params.get("thread", "")
    if len(raw) > MAX_JID or "@" not in raw or not is_token(raw):
        return None
    return raw


async def conversation_values(request: Request, account: Account) -> dict[str, Any]:
    backend = backend_of(request)
    threads = await backend.threads(account_id=account.id, thread_id=None, limit=THREADS)
    jid = _selected_jid(request)
    if jid is None and threads:
        jid = threads[0].client_jid
    selected: Thread | None = None
    if jid is not None:
        found = await backend.threads(
            account_id=account.id, thread_id=thread_id(account.id, jid), limit=MESSAGES
        )
        selected = found[0] if found else None
    return {"threads": threads, "selected": selected, "selected_jid": jid or ""}


async def status_values(request: Request, account: Account) -> dict[str, Any]:
    return {"account": account, "shard": shard_label(backend_of(request), account)}


async def history_values(request: Request, account: Account) -> dict[str, Any]:
    console = console_of(request)
    events = await console.history.recent(backend_of(request).event_log, account.id)
    return {"account": account, "events": events}


_VALUES = {"status": status_values, "messages": conversation_values, "history": history_values}


async def _account_page(
    request: Request, visitor: Visitor, account: Account, error: str = "", status_code: int = 200
) -> Response:
    renderer = console_of(request).renderer
    values = context(
        visitor,
        account=account,
        title=account.spec.name,
        notice=DONE.get(request.query_params.get("done", ""), ""),
        error=error,
        send_key=secrets.token_hex(12),  # the form's idempotency key: a resubmit is one send
        oob=False,  # the actions are in the page's header
        polls={"status": POLL_STATUS, "messages": POLL_MESSAGES, "history": POLL_HISTORY},
    )
    for collect in _VALUES.values():
        values.update(await collect(request, account))
    for part, name in FRAGMENTS.items():
        values[f"{part}_html"], _ = renderer.fragment_html(request, name, values)
    return renderer.page(request, "account.html", values, status_code)


@console_route()
async def account_page(request: Request, visitor: Visitor) -> Response:
    account = await load_account(request, "read")
    return await _account_page(request, visitor, account)


@console_route()
async def account_part(request: Request, visitor: Visitor) -> Response:
    """One of the page's polled parts: status, messages or history."""
    part = request.path_params["part"]
    if part not in FRAGMENTS:
        raise ApiError(404, "not_found", "no such part of an account page")
    account_id = request.path_params["account_id"]
    if not is_htmx(request):
        return RedirectResponse(paths.account_path(account_id), status_code=303)
    account = await load_account(request, "read")
    values = context(
        visitor,
        account=account,
        polls={"status": POLL_STATUS, "messages": POLL_MESSAGES, "history": POLL_HISTORY},
        oob=True,  # a status poll brings the header's actions too (they follow the phase)
    )
    values.update(await _VALUES[part](request, account))
    return console_of(request).renderer.fragment(request, FRAGMENTS[part], values)


@console_route()
async def send(request: Request, visitor: Visitor) -> Response:
    account = await load_account(request, "send")
    try:
        sent = await send_message(request, account, visitor.form)
    except ApiError as exc:
        if exc.status == 403:
            raise
        return await _account_page(request, visitor, account, for_people(exc.message), 400)
    query = urlencode({"done": "sent" if sent.created else "duplicate", "thread": sent.item.to_jid})
    target = f"{paths.account_path(account.id)}?{query}#conversation"
    return RedirectResponse(target, status_code=303)


async def _act(request: Request, visitor: Visitor, action: str) -> Response:
    account = await load_account(request, "manage")
    try:
        await account_action(request, account, action)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await _account_page(request, visitor, account, exc.message, 409)
    target = paths.account_path(account.id, "link") if action == "regenerate-qr" else None
    target = target or paths.account_path(account.id) + f"?done={action}"
    return RedirectResponse(target, status_code=303)


@console_route()
async def regenerate_qr(request: Request, visitor: Visitor) -> Response:
    return await _act(request, visitor, "regenerate-qr")


@console_route()
async def disconnect(request: Request, visitor: Visitor) -> Response:
    return await _act(request, visitor, "disconnect")


@console_route()
async def confirm_delete(request: Request, visitor: Visitor) -> Response:
    account = await load_account(request, "manage")
    values = context(visitor, account=account, title=f"Delete {account.spec.name}?")
    return console_of(request).renderer.page(request, "confirm_delete.html", values)


@console_route()
async def delete(request: Request, visitor: Visitor) -> Response:
    account = await load_account(request, "manage")
    if visitor.form.get("confirm") != account.id:
        return RedirectResponse(paths.account_path(account.id, "delete"), status_code=303)
    try:
        await account_action(request, account, "delete")
    except ApiError as exc:
        if exc.status != 409:
            raise
        return await _account_page(request, visitor, account, exc.message, 409)
    console_of(request).history.forget(account.id)
    return RedirectResponse(f"{paths.ROOT}?done=deleted", status_code=303)
