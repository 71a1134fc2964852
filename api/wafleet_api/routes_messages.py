"""Message routes (legacy paths): send through the outbox, read threads."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet.core.http import (
    ApiError,
    ascii_rule,
    field_str,
    field_token,
    is_token,
    read_json_object,
)
from wafleet.core.ids import outbox_id
from wafleet.core.ids import thread_id as make_thread_id
from wafleet.core.models import OutboxItem, iso
from wafleet.core.phases import Phase
from wafleet.core.phones import InvalidPhone, normalize_recipient
from wafleet_api.principal import require
from wafleet_api.routes_accounts import backend_of, not_found, settings_of
from wafleet_api.views import thread_view

MAX_TEXT = 65536
SEND_WAIT_SECONDS = 5.0
MAX_LIMIT = 500
MAX_ACCOUNT_ID = 64
MAX_TO = 64
MAX_KEY = 128
KEY_HEADER = "Idempotency-Key"


def outbox_view(item: OutboxItem) -> dict[str, object]:
    return {
        "id": item.id,
        "accountId": item.account_id,
        "toJid": item.to_jid,
        "threadId": item.thread_id,
        "body": item.body,
        "status": item.status,
        "attemptCount": item.attempt_count,
        "nextAttemptAt": iso(item.next_attempt_at),
        "providerMessageId": item.provider_message_id,
        "error": item.error,
        "idempotencyKey": item.idempotency_key,
        "createdAt": iso(item.created_at),
        "updatedAt": iso(item.updated_at),
    }


async def _wait_for_send(request: Request, item: OutboxItem) -> OutboxItem:
    """Give a connected account a few seconds to send, so the answer carries its id."""
    deadline = time.monotonic() + SEND_WAIT_SECONDS
    backend = backend_of(request)
    pause = 0.05
    while item.status in ("queued", "sending") and time.monotonic() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)  # a few reads per send, even on a remote store
        item = await backend.outbox_item(item.id) or item
    return item


def _header_key(request: Request) -> str:
    """The Idempotency-Key header ("" without one): printable ASCII, as the body's key."""
    value = request.headers.get(KEY_HEADER, "")
    if len(value) > MAX_KEY or not is_token(value, spaces=True):
        raise ApiError(
            400,
            "invalid_header",
            f"header '{KEY_HEADER}' must be {ascii_rule(True)}, at most {MAX_KEY} characters",
        )
    return value


@dataclass(frozen=True)
class SendFields:
    """What a send names (a JSON body, or the console's form), checked."""

    to_jid: str
    text: str
    key: str | None  # the idempotency key, when the sender gave one

    def item(self, account_id: str, key: str) -> OutboxItem:
        """The outbox item: its id follows from the account and the key, so the same send
        given twice is one item."""
        return OutboxItem(
            id=outbox_id(account_id, key),
            account_id=account_id,
            to_jid=self.to_jid,
            body=self.text,
            idempotency_key=key,
        )


def send_fields(data: dict[str, Any], default_region: str | None) -> SendFields:
    to = field_str(data, "to", required=True, max_length=MAX_TO)
    text = field_str(data, "message", required=True, max_length=MAX_TEXT)
    key = field_token(data, "idempotencyKey", required=False, max_length=MAX_KEY, spaces=True)
    try:
        to_jid = normalize_recipient(to, default_region)
    except InvalidPhone as exc:
        raise ApiError(400, "invalid_phone", f"field 'to': {exc}") from None
    return SendFields(to_jid, text, key or None)


async def send_message(request: Request) -> Response:
    require(request, "send")
    settings = settings_of(request)
    data = await read_json_object(request, settings.max_body_bytes)
    account_id = field_token(data, "accountId", required=True, max_length=MAX_ACCOUNT_ID)
    fields = send_fields(data, settings.default_region)
    key = fields.key or _header_key(request) or uuid.uuid4().hex
    backend = backend_of(request)
    account = await backend.get(account_id)  # by its id, or its wafleet name
    require(request, "send", account_id if account is None else account.id)
    if account is None:
        raise not_found(account_id)
    item, created = await backend.send(fields.item(account.id, key))
    if account.status.phase == Phase.CONNECTED:
        item = await _wait_for_send(request, item)
    sent = item.status == "sent"
    return JSONResponse(
        {
            "success": item.status not in ("failed", "ambiguous"),
            "messageId": item.provider_message_id if sent else item.id,
            "queued": not sent,
            "outboxId": item.id,
            "status": item.status,
            "duplicate": not created,
        },
        status_code=200,  # the legacy server's code; "queued" tells sent from queued
    )


async def get_outbox(request: Request) -> Response:
    require(request, "read")
    item = await backend_of(request).outbox_item(request.path_params["item_id"])
    if item is None:
        raise ApiError(404, "outbox_not_found", "no outbox item with that id")
    require(request, "read", item.account_id)
    return JSONResponse({"success": True, "item": outbox_view(item)})


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"query parameter 'limit' must be 1..{MAX_LIMIT}")
    return int(raw)


async def get_messages(request: Request) -> Response:
    """Threads, newest first; ``accountId`` and ``threadId`` filter them (both: the one
    thread if it is that account's, else none)."""
    query = request.query_params
    limit = _limit(query.get("limit"))
    account_id = query.get("accountId") or None
    thread_id = query.get("threadId") or None
    if account_id is not None and (len(account_id) > MAX_ACCOUNT_ID or not is_token(account_id)):
        raise ApiError(
            400,
            "invalid_query",
            f"query parameter 'accountId' must be {ascii_rule(False)}, "
            f"at most {MAX_ACCOUNT_ID} characters",
        )
    if thread_id is not None and "__" not in thread_id:
        raise ApiError(
            400, "invalid_query", "query parameter 'threadId' must look like '<accountId>__<jid>'"
        )
    backend = backend_of(request)
    account = None if account_id is None else await backend.get(account_id)
    if account is not None:
        account_id = account.id  # threads are kept under the account's id (legacy or not)
    principal = require(request, "read", account_id)
    if account_id is not None and account is None:
        raise not_found(account_id)
    if (
        thread_id is not None
        and account_id is not None
        and not thread_id.startswith(make_thread_id(account_id, ""))
    ):
        return JSONResponse({"success": True, "threads": []})  # another account's thread
    threads = await backend.threads(account_id=account_id, thread_id=thread_id, limit=limit)
    if not principal.every_account:  # a key limited to some accounts reads only theirs
        threads = [t for t in threads if principal.allows(t.account_id)]
    return JSONResponse({"success": True, "threads": [thread_view(t) for t in threads]})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/whatsapp/send-message", send_message, methods=["POST"]),
        Route("/api/whatsapp/messages", get_messages, methods=["GET"]),
        Route("/api/whatsapp/outbox/{item_id}", get_outbox, methods=["GET"]),
    ]
