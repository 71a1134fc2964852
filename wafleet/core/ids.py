"""Account ids: deterministic from the phone, valid Kubernetes names, no phone digits.

The id is "wa-" followed by 20 letters that encode 80 bits of
SHA-256(salt ":" E.164 phone). Letters only ("a".."p" for each hex digit), so
no digit of the phone can ever appear in it, and it is a valid DNS-1123 label
(what Kubernetes requires of a resource name). The salt (WAFLEET_ID_SALT) keeps
ids from being reversed by hashing every possible phone number; changing it
changes every id, so it is fixed per installation.
"""

from __future__ import annotations

import hashlib
import re

ID_PREFIX = "wa-"
_HEX_TO_LETTER = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
ACCOUNT_ID_RE = re.compile(r"^wa-[a-p]{20}$")
# The legacy server's ids: account_{env}_ + 32 lowercase hex digits (generateAccountId).
LEGACY_ENV_RE = re.compile(r"^[a-z0-9]{1,16}$")
LEGACY_ID_RE = re.compile(r"^account_[a-z0-9]{1,16}_[0-9a-f]{32}$")
ANY_ACCOUNT_ID_RE = re.compile(r"^(wa-[a-p]{20}|account_[a-z0-9]{1,16}_[0-9a-f]{32})$")


def account_id_for(e164_phone: str, salt: str = "wafleet") -> str:
    digest = hashlib.sha256(f"{salt}:{e164_phone}".encode()).hexdigest()[:20]
    return ID_PREFIX + digest.translate(_HEX_TO_LETTER)


def is_account_id(value: str) -> bool:
    return bool(ACCOUNT_ID_RE.fullmatch(value))


def legacy_account_id(e164_phone: str, env: str = "prod") -> str:
    """The legacy server's id for a phone: ``account_{env}_`` + SHA-256(E.164)[:32] in hex.

    The same phone gives the same id as the legacy ``generateAccountId``, so an account
    created in wafleet under the legacy id style lines up with the legacy data.
    """
    if not LEGACY_ENV_RE.fullmatch(env):
        raise ValueError(
            f"a legacy id environment is 1-16 lowercase letters or digits, not {env!r}"
        )
    return f"account_{env}_{hashlib.sha256(e164_phone.encode()).hexdigest()[:32]}"


def is_legacy_id(value: str) -> bool:
    return bool(LEGACY_ID_RE.fullmatch(value))


def is_any_account_id(value: str) -> bool:
    """A wafleet id or a legacy id: what the API accepts wherever it takes an account id."""
    return bool(ANY_ACCOUNT_ID_RE.fullmatch(value))


def thread_id(account_id: str, client_jid: str) -> str:
    """The legacy thread document id: ``{accountId}__{clientJid}``."""
    return f"{account_id}__{client_jid}"


def outbox_id(account_id: str, idempotency_key: str) -> str:
    """The outbox document id: one per (account, idempotency key), so a repeat finds it."""
    return "ob-" + hashlib.sha256(f"{account_id}\0{idempotency_key}".encode()).hexdigest()[:32]
