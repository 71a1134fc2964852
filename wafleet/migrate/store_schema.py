"""The whatsmeow schema, as the shipped library creates it: no SQL of whatsmeow's is copied here.

neonize's ``GetAllDevices`` on a new file runs whatsmeow's ``sqlstore.New`` → ``Upgrade``, which
creates the latest schema and its ``whatsmeow_version`` row. That is done once per process in
a child (``neonize_probe``), in a private temporary folder; the resulting database is
serialized and kept in memory as the template every converted store starts from.

The template is then checked: its version must be the one this converter was written for, and
every table and column the writer fills must exist. A neonize that ships another whatsmeow
schema fails here, clearly, before any account is converted.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from contextlib import closing
from pathlib import Path

from wafleet.migrate.neonize_probe import ProbeFailed, probe

SCHEMA_VERSION = 15  # whatsmeow's store/sqlstore/upgrades at the version neonize 0.5.2 ships
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "whatsmeow_device": (
        "jid",
        "lid",
        "facebook_uuid",
        "registration_id",
        "noise_key",
        "identity_key",
        "signed_pre_key",
        "signed_pre_key_id",
        "signed_pre_key_sig",
        "adv_key",
        "adv_details",
        "adv_account_sig",
        "adv_account_sig_key",
        "adv_device_sig",
        "platform",
        "business_name",
        "push_name",
        "lid_migration_ts",
        "companion_meta_nonce",
    ),
    "whatsmeow_identity_keys": ("our_jid", "their_id", "identity"),
    "whatsmeow_pre_keys": ("jid", "key_id", "key", "uploaded"),
    "whatsmeow_sessions": ("our_jid", "their_id", "session"),
    "whatsmeow_sender_keys": ("our_jid", "chat_id", "sender_id", "sender_key"),
    "whatsmeow_app_state_sync_keys": ("jid", "key_id", "key_data", "timestamp", "fingerprint"),
    "whatsmeow_app_state_version": ("jid", "name", "version", "hash"),
    "whatsmeow_app_state_mutation_macs": ("jid", "name", "version", "index_mac", "value_mac"),
    "whatsmeow_lid_map": ("lid", "pn"),
    "whatsmeow_privacy_tokens": ("our_jid", "their_jid", "token", "timestamp", "sender_timestamp"),
}


class SchemaMismatch(RuntimeError):
    """neonize's schema is not the one this converter writes into, or it cannot be made."""


_lock = threading.Lock()
_template: bytes | None = None


def check_schema(db: sqlite3.Connection) -> None:
    try:
        versions = db.execute("SELECT version FROM whatsmeow_version").fetchall()
    except sqlite3.DatabaseError as error:
        raise SchemaMismatch(f"the store has no readable whatsmeow_version ({error})") from None
    if [tuple(v) for v in versions] != [(SCHEMA_VERSION,)]:
        found = ", ".join(str(v[0]) for v in versions) or "none"
        raise SchemaMismatch(
            f"neonize created whatsmeow schema version {found}; this converter writes into "
            f"version {SCHEMA_VERSION} and must be checked against the new one"
        )
    for table, needed in REQUIRED_COLUMNS.items():
        columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
        missing = [c for c in needed if c not in columns]
        if missing:
            raise SchemaMismatch(
                f"neonize's schema {'lacks the table' if not columns else 'lacks columns of'} "
                f"{table}{'' if not columns else ': ' + ', '.join(missing)}"
            )


def _create() -> bytes:
    with tempfile.TemporaryDirectory(prefix="wafleet-schema-") as folder:
        path = Path(folder) / "schema.db"
        try:
            (result,) = probe([path])
        except ProbeFailed as error:
            raise SchemaMismatch(f"neonize could not create the store schema: {error}") from None
        if result.error is not None:
            raise SchemaMismatch(f"neonize could not create the store schema: {result.error}")
        with closing(sqlite3.connect(path)) as db:
            check_schema(db)
            return db.serialize()


def schema_template() -> bytes:
    """The empty store neonize creates (a serialized sqlite database), made once per process."""
    global _template  # noqa: PLW0603 - a per-process cache of the child's work
    with _lock:
        if _template is None:
            _template = _create()
        return _template
