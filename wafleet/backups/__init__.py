"""Encrypted, chunked backups of the connectors' session files (``wa_sessions`` in Firestore).

The connector calls ``backup(account_id, path)`` after pairing and periodically,
and ``restore_if_missing(account_id, path)`` before opening a session; see
:class:`SessionBackups` and ``docs/firestore.md`` for the format.
"""

from wafleet.backups.base import (
    BackupConflictError,
    BackupCorruptError,
    BackupError,
    BackupInfo,
    BackupKeyError,
    BackupStorage,
    Manifest,
    SessionBackups,
)
from wafleet.backups.crypto import BackupKey, load_key
from wafleet.backups.factory import open_backups
from wafleet.backups.service import SessionBackupService

__all__ = [
    "BackupConflictError",
    "BackupCorruptError",
    "BackupError",
    "BackupInfo",
    "BackupKey",
    "BackupKeyError",
    "BackupStorage",
    "Manifest",
    "SessionBackupService",
    "SessionBackups",
    "load_key",
    "open_backups",
]
