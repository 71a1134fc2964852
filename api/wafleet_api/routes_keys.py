"""Scoped API keys, managed by the admin: create (the secret is shown once), list, revoke."""

from __future__ import annotations

import re
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from wafleet.core.apikeys import (
    MAX_ACCOUNTS,
    MAX_NAME,
    SCOPES,
    ApiKey,
    Scope,
    new_key,
)
from wafleet.core.http import ApiError, field_name, field_str, read_json_object
from wafleet.core.ids import ANY_ACCOUNT_ID_RE
from wafleet.core.models import iso, utcnow
from wafleet.core.settings import Settings
from wafleet_api.principal import KeyResolver, require_admin

KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_SCOPES = ", ".join(SCOPES)


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": [s for s in SCOPES if s in key.scopes],
        "accountIds": None if key.account_ids is None else sorted(key.account_ids),
        "createdAt": iso(key.created_at),
        "revokedAt": iso(key.revoked_at),
    }


def resolver_of(request: Request) -> KeyResolver:
    resolver: KeyResolver = request.app.state.keys
    return resolver


def _scopes(data: dict[str, Any]) -> frozenset[Scope]:
    value = data.get("scopes")
    if value is None:
        raise ApiError(400, "missing_field", f"field 'scopes' is required: a list of {_SCOPES}")
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        message = f"field 'scopes' must be a non-empty list of {_SCOPES}"
        raise ApiError(400, "invalid_field", message)
    unknown = [s for s in value if s not in SCOPES]
    if unknown:
        message = f"field 'scopes': unknown scope '{unknown[0][:20]}'; use {_SCOPES}"
        raise ApiError(400, "invalid_field", message)
    return frozenset(cast(list[Scope], value))


def _account_ids(data: dict[str, Any]) -> frozenset[str] | None:
    value = data.get("accountIds")
    if value is None:
        return None  # every account
    if not isinstance(value, list) or not value or len(value) > MAX_ACCOUNTS:
        message = f"field 'accountIds' must be a list of 1 to {MAX_ACCOUNTS} account ids"
        raise ApiError(400, "invalid_field", message + ", or left out for every account")
    for item in value:
        if not isinstance(item, str) or not ANY_ACCOUNT_ID_RE.match(item):
            raise ApiError(
                400,
                "invalid_field",
                "field 'accountIds' holds something that is not an account id "
                "(lower-case letters, digits and '-', as the API returns them)",
            )
    return frozenset(value)


async def create_key(request: Request) -> Response:
    require_admin(request)
    settings: Settings = request.app.state.settings
    data = await read_json_object(request, settings.max_body_bytes)
    field_str(data, "name", required=True, max_length=MAX_NAME)  # present and not blank
    name = field_name(data, "name", max_length=MAX_NAME)
    key, secret = new_key(name, _scopes(data), _account_ids(data))
    await resolver_of(request).store.create(key)
    body = {"success": True, "key": key_view(key), "secret": secret}
    return JSONResponse(body, status_code=201)


async def list_keys(request: Request) -> Response:
    require_admin(request)
    keys = await resolver_of(request).store.list()
    return JSONResponse({"success": True, "keys": [key_view(k) for k in keys]})


async def revoke_key(request: Request) -> Response:
    require_admin(request)
    key_id = request.path_params["key_id"]
    resolver = resolver_of(request)
    key = await resolver.store.revoke(key_id, utcnow()) if KEY_ID.match(key_id) else None
    if key is None:
        raise ApiError(404, "key_not_found", f"no API key with id '{key_id[:64]}'")
    resolver.forget(key_id)
    return JSONResponse({"success": True, "key": key_view(key)})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/keys", create_key, methods=["POST"]),
        Route("/api/keys", list_keys, methods=["GET"]),
        Route("/api/keys/{key_id}", revoke_key, methods=["DELETE"]),
    ]
