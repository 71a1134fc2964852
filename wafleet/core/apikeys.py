"""Scoped API keys: what a key may do, its secret's format, and how it is stored (hashed).

A key's secret is ``wfk_<id>_<random>``: 12 hex characters that name the stored key and
43 characters of URL-safe base64 (256 random bits). Only the SHA-256 of the whole secret
is kept. A slow password hash would add nothing: nobody can guess 256 random bits, and
a fast hash keeps every request's check cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from wafleet.core.models import utcnow

Scope = Literal["read", "send", "manage"]
SCOPES: tuple[Scope, ...] = ("read", "send", "manage")
SCOPE_MEANING = {
    "read": "read accounts, QR codes, messages and outbox items",
    "send": "send messages",
    "manage": "add, disconnect, regenerate the QR of and delete accounts",
}
PREFIX = "wfk_"
SECRET_PATTERN = r"^wfk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$"  # noqa: S105 (a regex)
_SECRET = re.compile(SECRET_PATTERN)
MAX_NAME = 100
MAX_ACCOUNTS = 1000


@dataclass(frozen=True)
class ApiKey:
    """A stored key: never its secret, only the secret's hash."""

    id: str
    name: str
    scopes: frozenset[Scope]
    account_ids: frozenset[str] | None  # None: every account, present and future
    secret_hash: str = field(repr=False)
    created_at: datetime = field(default_factory=utcnow)
    revoked_at: datetime | None = None

    def allows_account(self, account_id: str) -> bool:
        return self.account_ids is None or account_id in self.account_ids

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The key id a presented secret names, or None if it is not shaped like a key."""
    found = _SECRET.match(secret)
    return found.group(1) if found else None


def is_key_secret(secret: str) -> bool:
    return secret.startswith(PREFIX)


def new_key(
    name: str, scopes: frozenset[Scope], account_ids: frozenset[str] | None
) -> tuple[ApiKey, str]:
    """A new key and its secret (the secret is shown once and never stored)."""
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    key = ApiKey(key_id, name, scopes, account_ids, hash_secret(secret))
    return key, secret
