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

from starlette.requests import Request

from wafleet.core.http import ApiError, field_name, field_str, field_token
from wafleet.core.ids import account_id_for, outbox_id
from wafleet.core.models import Account, AccountSpec, OutboxItem
from wafleet.core.phones import InvalidPhone, normalize_recipient
from wafleet_api.backend import AccountNotFound, ActionRefused
from wafleet_api.principal import require
from wafleet_api.routes_accounts import (
    LOGINS,
    backend_of,
    new_account_id,
    not_found,
    parse_phone,
    settings_of,
)
from wafleet_api.routes_messages import MAX_KEY, MAX_TEXT, MAX_TO

logger = logging.getLogger(__name__)

MAX_PHONE = 40
MAX_NAME = 100
_FIELDS = {"phone": "Phone", "name": "Name", "login": "Login", "to": "To", "message": "Message"}


def for_people(message: str) -> str:
    """An API message about a field ("field 'phone': ..."), with the form's label instead."""
    for field, label in _FIELDS.items():
        message = message.replace(f"field '{field}': ", f"{label}: ")
        message = message.replace(f"field '{field}' ", f"{label} ")
    return message[:1].upper() + message[1:]


async def add_account(request: Request, form: dict[str, str]) -> tuple[Account, bool]:
    """The account for the form's phone: created, or the one that has it already."""
    require(request, "manage")
    settings = settings_of(request)
    phone = parse_phone(field_str(form, "phone", required=True, max_length=MAX_PHONE), settings)
    name = field_name(form, "name", max_length=MAX_NAME)
    login = form.get("login") or "qr"
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
        account, created = await backend.add(spec)
    except ActionRefused as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    logger.info("console: account added", extra={"account": account.id, "new": created})
    return account, created


@dataclass(frozen=True)
class Sent:
    item: OutboxItem
    created: bool  # False: the same form was sent before (its idempotency key)


async def send_message(request: Request, account: Account, form: dict[str, str]) -> Sent:
    require(request, "send", account.id)
    settings = settings_of(request)
    to = field_str(form, "to", required=True, max_length=MAX_TO)
    text = field_str(form, "message", required=True, max_length=MAX_TEXT)
    key = field_token(form, "idempotencyKey", required=False, max_length=MAX_KEY, spaces=True)
    try:
        to_jid = normalize_recipient(to, settings.default_region)
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"field 'to': {exc}") from None
    key = key or uuid.uuid4().hex
    item = OutboxItem(
        id=outbox_id(account.id, key),
        account_id=account.id,
        to_jid=to_jid,
        body=text,
        idempotency_key=key,
    )
    item, created = await backend_of(request).send(item)
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
