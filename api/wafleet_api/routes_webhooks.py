"""Webhooks: register, list, delete, replay, and read a webhook's dead letters.

Managing webhooks takes the ``manage`` scope. A key limited to some accounts registers
webhooks for those accounts only (``accountIds`` required, within its own), and sees only
such webhooks; the admin and unlimited keys see them all.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet.core.apikeys import MAX_ACCOUNTS
from wafleet.core.http import ApiError, field_str, invalid, read_json_object
from wafleet.core.ids import is_any_account_id
from wafleet.events.model import EVENT_TYPES, is_event_id
from wafleet.events.signing import check_secret, new_secret
from wafleet.events.urls import check_url_resolving
from wafleet.events.webhooks import Webhook, normalized
from wafleet.stores.base import WebhookStore
from wafleet_api.principal import Principal, require
from wafleet_api.routes_accounts import backend_of, settings_of
from wafleet_api.routes_events import unknown_event

WEBHOOK_ID = re.compile(r"^wh_[0-9a-f]{16}$")
MAX_URL = 2048
MAX_SECRET = 128
MAX_FAILURES = 500
_TYPES = ", ".join(EVENT_TYPES)


def hooks_of(request: Request) -> WebhookStore:
    return backend_of(request).webhook_store


def _may_see(principal: Principal, hook: Webhook) -> bool:
    if principal.every_account:
        return True
    return hook.account_ids is not None and all(principal.allows(a) for a in hook.account_ids)


def _events(data: dict[str, Any]) -> tuple[str, ...] | None:
    value = data.get("events")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise invalid("events", f"must be a non-empty list of event types ({_TYPES})")
    unknown = [t for t in value if t not in EVENT_TYPES]
    if unknown:
        raise invalid("events", f"holds '{unknown[0][:40]}', not an event type; use {_TYPES}")
    return normalized(value)


def _account_ids(data: dict[str, Any], principal: Principal) -> tuple[str, ...] | None:
    value = data.get("accountIds")
    if value is None:
        if not principal.every_account:
            raise ApiError(
                403,
                "account_not_allowed",
                "this API key is limited to some accounts: give 'accountIds' within them",
            )
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_ACCOUNTS:
        raise invalid(
            "accountIds", f"must be a list of 1 to {MAX_ACCOUNTS} account ids, or left out"
        )
    for item in value:
        if not isinstance(item, str) or not is_any_account_id(item):
            raise invalid("accountIds", "holds something that is not an account id")
        if not principal.allows(item):
            raise ApiError(
                403, "account_not_allowed", f"this API key may not act on account '{item}'"
            )
    return normalized(value)


async def create_webhook(request: Request) -> Response:
    principal = require(request, "manage")
    settings = settings_of(request)
    data = await read_json_object(request, 64 * 1024)
    url = field_str(data, "url", required=True, max_length=MAX_URL).strip()
    try:
        url = await check_url_resolving(url, allow_private=settings.webhook_allow_private)
    except ValueError as exc:
        raise invalid("url", f"is refused: {exc}") from None
    events = _events(data)
    account_ids = _account_ids(data, principal)
    given = field_str(data, "secret", required=False, max_length=MAX_SECRET)
    try:
        secret = check_secret(given) if given else new_secret()
    except ValueError as exc:
        raise invalid("secret", str(exc)) from None
    hook = Webhook(
        id=f"wh_{secrets.token_hex(8)}",
        url=url,
        secret=secret,
        events=events,
        account_ids=account_ids,
    )
    await hooks_of(request).create_webhook(hook)
    backend_of(request).deliveries_changed()
    return JSONResponse({"success": True, "webhook": hook.public(), "secret": secret}, 201)


async def list_webhooks(request: Request) -> Response:
    principal = require(request, "manage")
    hooks = await hooks_of(request).list_webhooks()
    shown = [hook.public() for hook in hooks if _may_see(principal, hook)]
    return JSONResponse({"success": True, "webhooks": shown})


async def _load(request: Request) -> Webhook:
    principal = require(request, "manage")
    webhook_id = request.path_params["webhook_id"]
    hook = await hooks_of(request).get_webhook(webhook_id) if WEBHOOK_ID.match(webhook_id) else None
    if hook is None or not _may_see(principal, hook):
        raise ApiError(404, "webhook_not_found", f"no webhook with id '{webhook_id[:40]}'")
    return hook


async def get_webhook(request: Request) -> Response:
    hook = await _load(request)
    return JSONResponse({"success": True, "webhook": hook.public()})


async def delete_webhook(request: Request) -> Response:
    hook = await _load(request)
    await hooks_of(request).delete_webhook(hook.id)
    backend_of(request).deliveries_changed()
    return JSONResponse({"success": True, "webhookId": hook.id})


async def replay(request: Request) -> Response:
    hook = await _load(request)
    data = await read_json_object(request, 4096)
    after = field_str(data, "after", required=True, max_length=64)
    if not is_event_id(after):
        raise invalid("after", "must be an event id (evt_...), as events show it")
    event = await backend_of(request).event_log.get_event(after)
    if event is None:
        raise unknown_event(after)
    if not hook.enabled:
        raise ApiError(
            409,
            "webhook_disabled",
            f"webhook {hook.id} is disabled ({hook.disabled_reason}); register it again",
        )
    lanes = await hooks_of(request).replay(hook.id, event)
    backend_of(request).deliveries_changed()
    return JSONResponse({"success": True, "webhookId": hook.id, "after": after, "lanes": lanes})


async def failures(request: Request) -> Response:
    hook = await _load(request)
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_FAILURES:
        raise ApiError(400, "invalid_parameter", f"query 'limit' must be 1 to {MAX_FAILURES}")
    dead = await hooks_of(request).list_failures(hook.id, int(raw))
    return JSONResponse(
        {"success": True, "webhookId": hook.id, "failures": [f.public() for f in dead]}
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/api/webhooks", create_webhook, methods=["POST"]),
        Route("/api/webhooks", list_webhooks, methods=["GET"]),
        Route("/api/webhooks/{webhook_id}", get_webhook, methods=["GET"]),
        Route("/api/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
        Route("/api/webhooks/{webhook_id}/replay", replay, methods=["POST"]),
        Route("/api/webhooks/{webhook_id}/failures", failures, methods=["GET"]),
    ]
