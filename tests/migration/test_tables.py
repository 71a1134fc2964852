"""The other whatsmeow tables hold Baileys' values (row by row, research §5).

These parts have no offline behaviour to exercise (their use needs the server), so the
proof is equality with what Baileys holds, read from the SQLite file only.
"""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

if TYPE_CHECKING:
    from migration.conftest import Converted

pytestmark = pytest.mark.migration

SCHEMA_VERSION = (15, 8)  # whatsmeow_version after sqlstore's upgrades (v15, compatible with v8+)


@contextmanager
def read_only(store: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def their_id(address: str) -> str:
    name, _, device = address.rpartition(".")
    return f"{name}:{device}"


def fingerprint_class() -> Any:
    """WAWebProtobufsE2E.AppStateSyncKeyFingerprint, declared here (not neonize's copy)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="wafleet_tests_fingerprint.proto", package="wafleet_tests", syntax="proto2"
    )
    message = file.message_type.add(name="AppStateSyncKeyFingerprint")
    field = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="rawID", number=1, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL)
    message.field.add(
        name="currentIndex", number=2, type=field.TYPE_UINT32, label=field.LABEL_OPTIONAL
    )
    indexes = message.field.add(
        name="deviceIndexes", number=3, type=field.TYPE_UINT32, label=field.LABEL_REPEATED
    )
    indexes.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("wafleet_tests.AppStateSyncKeyFingerprint")
    )


def test_schema_is_whatsmeows_and_consistent(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        with read_only(c.store) as db:
            assert db.execute("SELECT version, compat FROM whatsmeow_version").fetchall() == [
                SCHEMA_VERSION
            ]
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
            assert db.execute("SELECT count(*) FROM whatsmeow_device").fetchone() == (1,)


def test_pre_keys_are_baileys_unused_pre_keys(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        expected = c.account.expected
        with read_only(c.store) as db:
            rows = db.execute(
                "SELECT jid, key_id, key, uploaded FROM whatsmeow_pre_keys"
            ).fetchall()
        assert {row[1] for row in rows} == {int(i) for i in expected["pre_keys"]}
        for jid, key_id, key, uploaded in rows:
            assert jid == expected["me"]["id"]
            public = X25519PrivateKey.from_private_bytes(key).public_key().public_bytes_raw()
            assert base64.b64encode(public).decode() == expected["pre_keys"][str(key_id)]
            assert bool(uploaded) == (key_id < expected["first_unuploaded_pre_key_id"])


def test_every_open_session_has_a_row(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        files = [p.name for p in c.account.folder.glob("session-*.json")]
        wanted = {their_id(name[len("session-") : -len(".json")]) for name in files}
        with read_only(c.store) as db:
            rows = db.execute("SELECT our_jid, their_id FROM whatsmeow_sessions").fetchall()
        assert {r[1] for r in rows} == wanted
        assert {r[0] for r in rows} == {c.account.expected["me"]["id"]}


def test_identity_keys_are_the_contacts_keys(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        expected = c.account.expected
        identities = expected["identities"]
        with read_only(c.store) as db:
            rows = dict(
                db.execute("SELECT their_id, identity FROM whatsmeow_identity_keys").fetchall()
            )
        # every identity Baileys saved (identity-key-<addr>.json) has its row
        for path in c.account.folder.glob("identity-key-*.json"):
            address = their_id(path.name[len("identity-key-") : -len(".json")])
            assert address in rows, f"{c.account.account_id}: no identity row for {address}"
        own = f"{expected['me']['lid'].split(':')[0]}_1:0"
        for address, identity in rows.items():
            assert len(identity) == 32, address
            if address == own:  # the primary phone's key (whatsmeow pair.go stores it too)
                assert (
                    base64.b64encode(identity).decode() == expected["keys"]["account_signature_key"]
                )
            else:
                assert address in identities, f"{c.account.account_id}: unknown identity {address}"
                assert base64.b64encode(identity).decode() == identities[address], address


def test_lid_map_holds_every_mapping(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        with read_only(c.store) as db:
            rows = set(db.execute("SELECT lid, pn FROM whatsmeow_lid_map").fetchall())
        for pair in c.account.expected["lid_map"]:
            assert (pair["lid"], pair["pn"]) in rows, pair
        for lid, pn in rows:
            assert re.fullmatch(r"\d+", lid)
            assert re.fullmatch(r"\d+", pn)


def test_app_state_sync_keys_are_copied(converted: tuple[Converted, ...]) -> None:
    fingerprint = fingerprint_class()
    for c in converted:
        with read_only(c.store) as db:
            rows = db.execute(
                "SELECT jid, key_id, key_data, timestamp, fingerprint"
                " FROM whatsmeow_app_state_sync_keys"
            ).fetchall()
        wanted = c.account.expected["app_state_sync_keys"]
        assert len(rows) == len(wanted)
        by_id = {row[1]: row for row in rows}
        for key in wanted:
            jid, _, key_data, timestamp, stored = by_id[base64.b64decode(key["key_id"])]
            assert jid == c.account.expected["me"]["id"]
            assert key_data == base64.b64decode(key["key_data"])
            assert timestamp == key["timestamp"]
            parsed = fingerprint.FromString(stored)
            assert parsed.rawID == key["fingerprint"]["rawId"]
            assert parsed.currentIndex == key["fingerprint"]["currentIndex"]
            assert list(parsed.deviceIndexes) == key["fingerprint"]["deviceIndexes"]


def test_privacy_tokens_are_copied(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        with read_only(c.store) as db:
            rows = db.execute(
                "SELECT our_jid, their_jid, token, timestamp, sender_timestamp"
                " FROM whatsmeow_privacy_tokens"
            ).fetchall()
        wanted = {t["their_jid"]: t for t in c.account.expected["privacy_tokens"]}
        assert {row[1] for row in rows} == set(wanted)  # and not Baileys' __index sentinel
        for our_jid, jid, token, timestamp, sender_timestamp in rows:
            assert our_jid == c.account.expected["me"]["id"]
            assert token == base64.b64decode(wanted[jid]["token"])
            assert timestamp == wanted[jid]["timestamp"]
            assert sender_timestamp == wanted[jid]["sender_timestamp"]


def test_app_state_versions_if_migrated_are_baileys(converted: tuple[Converted, ...]) -> None:
    """Optional part (research §5): leaving it out means a full snapshot sync; wrong is worse."""
    for c in converted:
        with read_only(c.store) as db:
            rows = db.execute(
                "SELECT name, version, hash FROM whatsmeow_app_state_version"
            ).fetchall()
        wanted = c.account.expected["app_state_versions"]
        for name, version, hash_ in rows:
            assert name in wanted, name
            assert version == wanted[name]["version"]
            assert hash_ == base64.b64decode(wanted[name]["hash"])
