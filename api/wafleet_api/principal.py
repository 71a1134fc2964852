"""Who is calling, and what it may do: the admin (the admin token), a scoped API key, or
a signed link that opens one QR page.

The authentication middleware puts a ``Principal`` in the request's state; routes call
``require(request, scope, account_id)`` before they act, and list routes keep only the
accounts ``allows()`` lets through. Keys are read from the key store and cached for
``KEY_CACHE_SECONDS``: a key revoked on this API pod stops at once, on the others within
that time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from starlette.requests import Request

from wafleet.core.apikeys import SCOPE_MEANING, ApiKey, Scope, key_id_of
from wafleet.core.http import ApiError
from wafleet.core.models import Account
from wafleet.stores.base import KeyStore
from wafleet_api.links import QR_VISUAL_PATH, qr_page_path

KEY_CACHE_SECONDS = 5.0
MAX_CACHED_KEYS = 10_000

A = TypeVar("A", bound=Account)


@dataclass(frozen=True)
class Principal:
    kind: Literal["admin", "key", "link"]
    key: ApiKey | None = None  # kind "key"
    page: str | None = None  # kind "link": the one page path the link opens

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    @property
    def label(self) -> str:
        """For logs: never the secret."""
        if self.key is not None:
            return f"key {self.key.id}"
        return self.kind

    def has(self, scope: Scope) -> bool:
        if self.kind == "link":
            return scope == "read"
        return self.key is None or scope in self.key.scopes

    def allows(self, account_id: str) -> bool:
        if self.kind == "link":
            return self.page in (QR_VISUAL_PATH, qr_page_path(account_id))
        return self.key is None or self.key.allows_account(account_id)

    @property
    def every_account(self) -> bool:
        if self.kind == "link":
            return self.page == QR_VISUAL_PATH
        return self.key is None or self.key.account_ids is None


ADMIN = Principal("admin")


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # only a route outside the auth middleware
        raise ApiError(401, "unauthorized", "this route needs a bearer token")
    return principal


def require(request: Request, scope: Scope, account_id: str | None = None) -> Principal:
    """The caller, if it holds ``scope`` (for ``account_id``); else a 403 naming what lacks."""
    principal = principal_of(request)
    if not principal.has(scope):
        raise ApiError(
            403,
            "missing_scope",
            f"this API key lacks the '{scope}' scope ({SCOPE_MEANING[scope]}); "
            "ask the admin for a key that has it",
        )
    if account_id is not None and not principal.allows(account_id):
        raise ApiError(
            403,
            "account_not_allowed",
            f"this API key is not allowed to act on account '{account_id[:64]}'",
        )
    return principal


def require_every_account(request: Request, why: str) -> Principal:
    """``read`` for every account (a route whose answer covers the whole fleet)."""
    principal = require(request, "read")
    if not principal.every_account:
        raise ApiError(403, "account_not_allowed", f"{why}; this API key is limited to some")
    return principal


def require_admin(request: Request) -> None:
    if not principal_of(request).is_admin:
        raise ApiError(
            403, "admin_only", "only the admin token manages API keys; a scoped key cannot"
        )


def visible(request: Request, accounts: Sequence[A]) -> Sequence[A]:
    """The accounts the caller may read (all of them for the admin and unrestricted keys)."""
    principal = require(request, "read")
    if principal.every_account:
        return accounts
    return [a for a in accounts if principal.allows(a.id)]


class KeyResolver:
    """Secret -> Principal, through the key store, with a short cache per key id.

    Made with the app; the app's lifespan opens the store (``open()``) and closes it.
    """

    def __init__(self, ttl: float = KEY_CACHE_SECONDS) -> None:
        self._store: KeyStore | None = None
        self._ttl = ttl
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            raise RuntimeError("the API key store is not open (the app has not started)")
        return self._store

    def open(self, store: KeyStore) -> None:
        self._store = store
        self._cache.clear()

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    async def resolve(self, secret: str) -> tuple[Principal | None, str]:
        """The key's principal, or None and why the secret is refused (for the 401)."""
        key_id = key_id_of(secret)
        if key_id is None:
            return None, "the bearer token is not valid"
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is None or now - hit[0] > self._ttl:
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()  # unknown ids are cached too: bound what callers fill
            hit = (now, await self.store.get(key_id))
            self._cache[key_id] = hit
        key = hit[1]
        if key is None or not key.matches(secret):
            return None, "the API key is not valid"
        if key.revoked_at is not None:
            return None, "the API key was revoked"
        return Principal("key", key), ""
