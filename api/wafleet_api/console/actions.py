"""What the console's forms do, checked and carried out as the REST routes do it.

``add_account`` is ``POST /api/whatsapp/add-account`` (idempotent by phone, the new id in
the installation's id style, ``manage`` for that account) and ``send_message`` is
``POST /api/whatsapp/send-message`` (through the outbox, idempotent by key), built from
the same helpers and the same field rules; only the input is a form instead of JSON.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from wafleet.core.http import ApiError
from wafleet.core.models import Account, OutboxItem
from wafleet_api.backend import AccountNotFound, ActionRefused
from wafleet_api.principal import require
from wafleet_api.routes_accounts import add_from_fields, backend_of, not_found, settings_of
from wafleet_api.routes_messages import send_fields

logger = logging.getLogger(__name__)

_FIELDS = {"phone": "Phone", "name": "Name", "login": "Login", "to": "To", "message": "Message"}


def for_people(message: str) -> str:
    """An API message about a field ("field 'phone': ..."), with the form's label instead."""
    for field, label in _FIELDS.items():
        message = message.replace(f"field '{field}': ", f"{label}: ")
        message = message.replace(f"field '{field}' ", f"{label} ")
    return message[:1].upper() + message[1:]


async def add_account(request: Request, form: dict[str, str]) -> tuple[Account, bool]:
    """The account for the form's phone: created, or the one that has it already (the
    same code as ``POST /api/whatsapp/add-account``)."""
    fields: dict[str, Any] = {**form, "login": form.get("login") or "qr"}
    account, created = await add_from_fields(request, fields)
    logger.info("console: account added", extra={"account": account.id, "new": created})
    return account, created


@dataclass(frozen=True)
class Sent:
    item: OutboxItem
    created: bool  # False: the same form was sent before (its idempotency key)


async def send_message(request: Request, account: Account, form: dict[str, str]) -> Sent:
    """Queue the form's message (the same checks as ``POST /api/whatsapp/send-message``)."""
    require(request, "send", account.id)
    fields = send_fields(dict(form), settings_of(request).default_region)
    item, created = await backend_of(request).send(
        fields.item(account.id, fields.key or uuid.uuid4().hex)
    )
    logger.info("console: message queued", extra={"account": account.id, "outbox": item.id})
    return Sent(item, created)


async def account_action(request: Request, account: Account, action: str) -> None:
    """regenerate-qr, disconnect or delete, as the REST routes do them (``manage``)."""
    require(request, "manage", account.id)
    backend = backend_of(request)
    run = {
        "regenerate-qr": backend.regenerate_qr,
        "disconnect": backend.disconnect,
        "delete": backend.delete,
    }[action]
    try:
        await run(account.id)
    except AccountNotFound:
        raise not_found(account.id) from None
    except ActionRefused as exc:
        code = "unlink_pending" if action == "delete" else "conflict"
        raise ApiError(409, code, str(exc)) from None
    logger.info("console: %s", action, extra={"account": account.id})
