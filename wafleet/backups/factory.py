"""The session backups the settings call for."""

from __future__ import annotations

from wafleet.backups.base import SessionBackups
from wafleet.backups.crypto import load_key
from wafleet.backups.service import SessionBackupService
from wafleet.core.settings import Settings


def open_backups(settings: Settings) -> SessionBackups | None:
    """Firestore backups when ``settings.store`` is 'firestore' (a key is then required:
    backup and restore raise BackupKeyError naming the setting while none is set);
    local backups under ``data_dir/backups`` in standalone mode, only if a key is set
    (None otherwise: the sessions are already on the machine's own disk).
    """
    if settings.store == "firestore":
        from wafleet.backups.firestore_storage import FirestoreBackupStorage  # noqa: PLC0415
        from wafleet.stores.firestore_io import make_client  # noqa: PLC0415

        client = make_client(
            settings.firestore_project,
            settings.firestore_database,
            settings.firestore_credentials_json,
        )
        storage = FirestoreBackupStorage(client, owns_client=True)
        return SessionBackupService(storage, lambda: load_key(settings))
    if settings.backup_key is None and settings.backup_key_file is None:
        return None
    from wafleet.backups.local_storage import LocalBackupStorage  # noqa: PLC0415

    key = load_key(settings)  # standalone opted in: a bad key fails at start
    return SessionBackupService(LocalBackupStorage(settings.data_dir / "backups"), lambda: key)
