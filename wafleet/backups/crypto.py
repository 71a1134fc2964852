"""The backup key and AES-256-GCM sealing of backups.

The key comes from ``WAFLEET_BACKUP_KEY`` (base64 of 32 bytes) or
``WAFLEET_BACKUP_KEY_FILE`` (a file holding the same, e.g. a mounted Kubernetes
Secret; 32 raw bytes are accepted too), with ``WAFLEET_BACKUP_KEY_ID`` naming it.
The key id is stored with every backup. The associated data binds a ciphertext
to its account, generation and key id, so chunks of another account or an older
generation never decrypt in place of the current one.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wafleet.backups.base import BackupKeyError
from wafleet.core.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"wafleet session backup v3"
_HOW = (
    "set WAFLEET_BACKUP_KEY to the base64 of 32 random bytes (e.g. `openssl rand -base64 32`) "
    "or WAFLEET_BACKUP_KEY_FILE to a file holding it"
)


@dataclass(frozen=True)
class BackupKey:
    key_id: str
    secret: bytes = field(repr=False)


def _decode(text: bytes, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BackupKeyError(f"{where} is not valid base64; {_HOW}") from None
    if len(key) != KEY_BYTES:
        raise BackupKeyError(f"{where} decodes to {len(key)} bytes, not {KEY_BYTES}; {_HOW}")
    return key


def load_key(settings: Settings) -> BackupKey:
    """The configured key, or BackupKeyError naming the setting to fix."""
    if settings.backup_key is not None and settings.backup_key_file is not None:
        raise BackupKeyError(
            "both WAFLEET_BACKUP_KEY and WAFLEET_BACKUP_KEY_FILE are set; set only one"
        )
    if settings.backup_key is not None:
        secret = _decode(settings.backup_key.encode(), "WAFLEET_BACKUP_KEY")
    elif settings.backup_key_file is not None:
        path = settings.backup_key_file
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BackupKeyError(
                f"WAFLEET_BACKUP_KEY_FILE={str(path)!r} cannot be read: {exc.strerror}"
            ) from None
        secret = raw if len(raw) == KEY_BYTES else _decode(raw, f"WAFLEET_BACKUP_KEY_FILE={path}")
    else:
        raise BackupKeyError(f"session backups need a key: {_HOW}")
    return BackupKey(settings.backup_key_id, secret)


def associated_data(account_id: str, generation: int, key_id: str) -> bytes:
    return b"\0".join((_AAD_PREFIX, account_id.encode(), str(generation).encode(), key_id.encode()))


def seal(key: BackupKey, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext with its 16-byte tag); a fresh random nonce every time."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key.secret).encrypt(nonce, plaintext, aad)


def unseal(key: BackupKey, nonce: bytes, ciphertext: bytes, aad: bytes, what: str) -> bytes:
    try:
        return AESGCM(key.secret).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise BackupKeyError(
            f"{what} does not decrypt with key id {key.key_id!r}: WAFLEET_BACKUP_KEY "
            "(or WAFLEET_BACKUP_KEY_FILE) is not the key it was written with, or the backup "
            "was altered; the local session was left untouched"
        ) from None
