"""What the legacy server left behind, gathered per account: read only, never written.

Three places hold it: the sessions folder (``{SESSIONS_PATH}/{accountId}/creds.json`` and
the key files Baileys' ``useMultiFileAuthState`` writes beside it), the Firestore
``wa_sessions/{accountId}`` backups (``schemaVersion`` 2, a ``files`` map of the same
files) and the Firestore ``accounts/{accountId}`` documents (name, phone, status). An
account is known by any of them; its auth state comes from the folder when it has a
``creds.json`` (the server wrote there first and backed up after), else from the backup.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from wafleet.core.ids import is_legacy_id
from wafleet.core.phones import InvalidPhone, normalize_phone

logger = logging.getLogger(__name__)

LEGACY_BACKUP_SCHEMA = 2
ACCOUNTS = "accounts"
SESSIONS = "wa_sessions"


@dataclass(frozen=True)
class LegacyAccount:
    """One legacy account, from whichever places know it."""

    id: str
    phone: str | None = None  # E.164, from the accounts document
    name: str | None = None
    status: str | None = None  # the legacy status (connected, needs_qr, deleted, ...)
    folder: Path | None = None  # the sessions folder, when it has a creds.json
    backup_files: Mapping[str, str] | None = field(default=None, repr=False)
    backup_updated_at: datetime | None = None
    notes: tuple[str, ...] = ()  # what was odd in the sources (for the report)

    @property
    def auth_source(self) -> str | None:
        """Where the auth state is read from: the folder, the backup, or nowhere."""
        if self.folder is not None:
            return "folder"
        if self.backup_files is not None:
            return "firestore backup"
        return None


@dataclass
class Gathered:
    """The accounts found, by id, and the entries that are not accounts (reported)."""

    accounts: dict[str, LegacyAccount] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def merge(self, account_id: str, **values: Any) -> None:
        known = self.accounts.get(account_id) or LegacyAccount(account_id)
        notes = known.notes + tuple(values.pop("notes", ()))
        self.accounts[account_id] = replace(known, notes=notes, **values)

    def sorted(self) -> list[LegacyAccount]:
        return [self.accounts[key] for key in sorted(self.accounts)]


def scan_sessions_dir(path: Path, gathered: Gathered) -> None:
    """The account folders under ``path`` (the legacy SESSIONS_PATH)."""
    if not path.is_dir():
        raise FileNotFoundError(f"the legacy sessions folder {path} does not exist")
    for entry in sorted(path.iterdir()):
        if not entry.is_dir():
            continue  # wafleet's own {id}.db files may sit here too (WAFLEET_SESSIONS_DIR)
        if not is_legacy_id(entry.name):
            gathered.ignored.append(f"{entry}: not a legacy account folder (account_<env>_<hash>)")
            continue
        if not (entry / "creds.json").is_file():
            gathered.merge(entry.name, notes=(f"{entry} has no creds.json",))
            continue
        gathered.merge(entry.name, folder=entry)


def _phone(data: Mapping[str, Any], account_id: str) -> tuple[str | None, tuple[str, ...]]:
    for key in ("phoneE164", "phone"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            try:
                return normalize_phone(value), ()
            except InvalidPhone as exc:
                return None, (f"accounts/{account_id}.{key} is not a phone number: {exc}",)
    return None, ()


def add_account_documents(
    docs: Iterable[tuple[str, Mapping[str, Any]]], gathered: Gathered
) -> None:
    """The legacy ``accounts`` documents: name, phone, status."""
    for doc_id, data in docs:
        if not is_legacy_id(doc_id):
            gathered.ignored.append(f"accounts/{doc_id}: not a legacy account id")
            continue
        phone, notes = _phone(data, doc_id)
        name = data.get("name")
        status = data.get("status")
        gathered.merge(
            doc_id,
            phone=phone,
            name=name.strip() if isinstance(name, str) and name.strip() else None,
            status=status if isinstance(status, str) else None,
            notes=notes,
        )


def add_backup_documents(docs: Iterable[tuple[str, Mapping[str, Any]]], gathered: Gathered) -> None:
    """The legacy ``wa_sessions`` backups (schemaVersion 2); wafleet's own (3) are not."""
    for doc_id, data in docs:
        if data.get("schemaVersion") != LEGACY_BACKUP_SCHEMA:
            continue  # wafleet's encrypted generations, under wa-... names
        if not is_legacy_id(doc_id):
            gathered.ignored.append(f"wa_sessions/{doc_id}: not a legacy account id")
            continue
        files = data.get("files")
        if not isinstance(files, dict) or "creds.json" not in files:
            gathered.merge(doc_id, notes=(f"wa_sessions/{doc_id} holds no creds.json",))
            continue
        updated = data.get("updatedAt")
        gathered.merge(
            doc_id,
            backup_files={str(k): v for k, v in files.items()},
            backup_updated_at=updated if isinstance(updated, datetime) else None,
        )


async def read_firestore(client: Any, gathered: Gathered) -> None:
    """Read the legacy ``accounts`` and ``wa_sessions`` collections (reads only)."""
    accounts = [(doc.id, doc.to_dict() or {}) async for doc in client.collection(ACCOUNTS).stream()]
    add_account_documents(accounts, gathered)
    backups = [(doc.id, doc.to_dict() or {}) async for doc in client.collection(SESSIONS).stream()]
    add_backup_documents(backups, gathered)
    logger.info(
        "legacy Firestore read",
        extra={"accounts": len(accounts), "sessionBackups": len(backups)},
    )
