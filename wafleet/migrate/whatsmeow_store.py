"""Writing one account's rows into a new whatsmeow session store, all or nothing.

The store starts as neonize's own empty schema (``store_schema``), written to a temporary file
next to the target (mode 0600). The rows go in with ``PRAGMA foreign_keys=ON`` in one
transaction, bytes as BLOBs; the file is fsynced and moved into place with ``os.replace``,
then the folder is fsynced. On any error the temporary file is removed: the target is either
absent or complete. An existing target is never overwritten (``TargetExists``): whether to
replace it is the caller's decision.

Every per-device table gets ``our_jid``/``jid`` = the device JID; ``whatsmeow_lid_map`` is not
per device.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from wafleet.migrate.store_schema import check_schema, schema_template


@dataclass(frozen=True)
class DeviceRow:
    jid: str
    lid: str | None
    registration_id: int
    noise_key: bytes
    identity_key: bytes
    signed_pre_key: bytes
    signed_pre_key_id: int
    signed_pre_key_sig: bytes
    adv_key: bytes
    adv_details: bytes
    adv_account_sig: bytes
    adv_account_sig_key: bytes
    adv_device_sig: bytes
    platform: str
    business_name: str
    push_name: str


@dataclass(frozen=True)
class PreKeyRow:
    key_id: int
    key: bytes
    uploaded: bool


@dataclass(frozen=True)
class SessionRow:
    their_id: str
    session: bytes


@dataclass(frozen=True)
class IdentityRow:
    their_id: str
    identity: bytes


@dataclass(frozen=True)
class SenderKeyRow:
    chat_id: str
    sender_id: str
    sender_key: bytes


@dataclass(frozen=True)
class AppStateKeyRow:
    key_id: bytes
    key_data: bytes
    timestamp: int
    fingerprint: bytes


@dataclass(frozen=True)
class AppStateVersionRow:
    name: str
    version: int
    hash: bytes
    macs: tuple[tuple[bytes, bytes], ...]  # (index MAC, value MAC), all at ``version``


@dataclass(frozen=True)
class LidMapRow:
    lid: str  # bare users
    pn: str


@dataclass(frozen=True)
class PrivacyTokenRow:
    their_jid: str
    token: bytes
    timestamp: int
    sender_timestamp: int | None


@dataclass(frozen=True)
class StoreRows:
    device: DeviceRow
    pre_keys: tuple[PreKeyRow, ...] = ()
    sessions: tuple[SessionRow, ...] = ()
    identities: tuple[IdentityRow, ...] = ()
    sender_keys: tuple[SenderKeyRow, ...] = ()
    app_state_keys: tuple[AppStateKeyRow, ...] = ()
    app_state_versions: tuple[AppStateVersionRow, ...] = ()
    lid_map: tuple[LidMapRow, ...] = ()
    privacy_tokens: tuple[PrivacyTokenRow, ...] = ()


class TargetExists(FileExistsError):
    """The target store exists; it is never overwritten here."""


def refuse_existing(target: Path) -> None:
    if target.exists() or target.is_symlink():
        raise TargetExists(
            f"{target} already exists; it is left as it is (remove it first to replace it)"
        )


def _insert_device(db: sqlite3.Connection, d: DeviceRow) -> None:
    db.execute(
        "INSERT INTO whatsmeow_device (jid, lid, facebook_uuid, registration_id, noise_key,"
        " identity_key, signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key,"
        " adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig, platform,"
        " business_name, push_name, lid_migration_ts, companion_meta_nonce)"
        " VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')",
        (
            d.jid,
            d.lid,
            d.registration_id,
            d.noise_key,
            d.identity_key,
            d.signed_pre_key,
            d.signed_pre_key_id,
            d.signed_pre_key_sig,
            d.adv_key,
            d.adv_details,
            d.adv_account_sig,
            d.adv_account_sig_key,
            d.adv_device_sig,
            d.platform,
            d.business_name,
            d.push_name,
        ),
    )


def _insert_rows(db: sqlite3.Connection, rows: StoreRows) -> None:
    jid = rows.device.jid
    _insert_device(db, rows.device)
    db.executemany(
        "INSERT INTO whatsmeow_pre_keys (jid, key_id, key, uploaded) VALUES (?, ?, ?, ?)",
        [(jid, r.key_id, r.key, r.uploaded) for r in rows.pre_keys],
    )
    db.executemany(
        "INSERT INTO whatsmeow_sessions (our_jid, their_id, session) VALUES (?, ?, ?)",
        [(jid, r.their_id, r.session) for r in rows.sessions],
    )
    db.executemany(
        "INSERT INTO whatsmeow_identity_keys (our_jid, their_id, identity) VALUES (?, ?, ?)",
        [(jid, r.their_id, r.identity) for r in rows.identities],
    )
    db.executemany(
        "INSERT INTO whatsmeow_sender_keys (our_jid, chat_id, sender_id, sender_key)"
        " VALUES (?, ?, ?, ?)",
        [(jid, r.chat_id, r.sender_id, r.sender_key) for r in rows.sender_keys],
    )
    db.executemany(
        "INSERT INTO whatsmeow_app_state_sync_keys (jid, key_id, key_data, timestamp, fingerprint)"
        " VALUES (?, ?, ?, ?, ?)",
        [(jid, r.key_id, r.key_data, r.timestamp, r.fingerprint) for r in rows.app_state_keys],
    )
    db.executemany(
        "INSERT INTO whatsmeow_app_state_version (jid, name, version, hash) VALUES (?, ?, ?, ?)",
        [(jid, r.name, r.version, r.hash) for r in rows.app_state_versions],
    )
    db.executemany(
        "INSERT INTO whatsmeow_app_state_mutation_macs (jid, name, version, index_mac, value_mac)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (jid, r.name, r.version, index_mac, value_mac)
            for r in rows.app_state_versions
            for index_mac, value_mac in r.macs
        ],
    )
    db.executemany(
        "INSERT INTO whatsmeow_lid_map (lid, pn) VALUES (?, ?)",
        [(r.lid, r.pn) for r in rows.lid_map],
    )
    db.executemany(
        "INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp,"
        " sender_timestamp) VALUES (?, ?, ?, ?, ?)",
        [(jid, r.their_jid, r.token, r.timestamp, r.sender_timestamp) for r in rows.privacy_tokens],
    )


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fill(tmp: Path, rows: StoreRows) -> None:
    with closing(sqlite3.connect(tmp, isolation_level=None)) as db:
        db.execute("PRAGMA foreign_keys=ON")
        check_schema(db)
        db.execute("BEGIN IMMEDIATE")
        try:
            _insert_rows(db, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def write_store(rows: StoreRows, target: Path) -> None:
    """Create ``target`` holding ``rows`` (atomically; ``TargetExists`` if it exists).

    ``sqlite3.IntegrityError`` means the schema refused a row (the caller validates rows first).
    """
    refuse_existing(target)
    template = schema_template()
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(template)
            out.flush()
            os.fsync(out.fileno())
        _fill(tmp, rows)
        os.chmod(tmp, 0o600)
        _fsync(tmp)
        refuse_existing(target)
        os.replace(tmp, target)
        _fsync(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except BaseException:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            leftover.unlink(missing_ok=True)
        raise
