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


def account_id_for(e164_phone: str, salt: str = "wafleet") -> str:
    digest = hashlib.sha256(f"{salt}:{e164_phone}".encode()).hexdigest()[:20]
    return ID_PREFIX + digest.translate(_HEX_TO_LETTER)


def is_account_id(value: str) -> bool:
    return bool(ACCOUNT_ID_RE.fullmatch(value))


def thread_id(account_id: str, client_jid: str) -> str:
    """The legacy thread document id: ``{accountId}__{clientJid}``."""
    return f"{account_id}__{client_jid}"


def outbox_id(account_id: str, idempotency_key: str) -> str:
    """The outbox document id: one per (account, idempotency key), so a repeat finds it."""
    return "ob-" + hashlib.sha256(f"{account_id}\0{idempotency_key}".encode()).hexdigest()[:32]
