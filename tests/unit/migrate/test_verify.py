"""The offline check finds what is wrong in a store: keys, signatures, rows, the device."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from unit.migrate.samples import Sample, XKey, advice_details

from wafleet.migrate import xeddsa
from wafleet.migrate.baileys import read_backup_files
from wafleet.migrate.baileys_model import AuthState
from wafleet.migrate.convert import convert
from wafleet.migrate.verify import Expected, varint_fields, verify, verify_many


def store(tmp_path: Path, name: str = "a.db") -> tuple[Path, AuthState]:
    state = read_backup_files(Sample().texts())
    target = tmp_path / name
    convert(state, target)
    return target, state


def tamper(target: Path, sql: str, *args: object) -> None:
    with closing(sqlite3.connect(target)) as db:
        db.execute(sql, args)
        db.commit()


def failed(target: Path, state: AuthState, push_name: str | None = None) -> set[str]:
    return {c.name for c in verify(target, state, push_name=push_name).failures()}


@pytest.mark.neonize
def test_several_stores_are_checked_with_one_child(tmp_path: Path) -> None:
    first, second = store(tmp_path, "a.db"), store(tmp_path, "b.db")
    results = verify_many([Expected(*first), Expected(*second)])
    assert [r.ok for r in results] == [True, True]
    assert verify_many([]) == []


@pytest.mark.neonize
def test_a_wrong_device_is_found(tmp_path: Path) -> None:
    target, state = store(tmp_path)
    assert failed(target, state, push_name="Someone else") == {"push name"}
    sample = Sample()
    sample.creds["me"]["id"] = "40700000000:3@s.whatsapp.net"
    other = read_backup_files(sample.texts())  # another account's keys
    assert {"jid", "noise key", "identity key", "signed pre-key", "pre-keys"} <= failed(
        target, other
    )


@pytest.mark.neonize
def test_tampered_keys_signatures_and_rows_are_found(tmp_path: Path) -> None:
    target, state = store(tmp_path)
    tamper(target, "UPDATE whatsmeow_device SET noise_key = ?", os.urandom(32))
    tamper(target, "UPDATE whatsmeow_device SET adv_device_sig = ?", bytes(64))
    tamper(target, "UPDATE whatsmeow_pre_keys SET key = ? WHERE key_id = 2", os.urandom(32))
    tamper(target, "UPDATE whatsmeow_sessions SET session = ?", b'{"SessionState":{}}')
    tamper(target, "UPDATE whatsmeow_sender_keys SET sender_key = ?", b"{}")
    assert failed(target, state) == {
        "noise key",
        "device signature",
        "pre-keys",
        "whatsmeow_sessions rows load",
        "whatsmeow_sender_keys rows load",
    }


@pytest.mark.neonize
def test_a_store_neonize_cannot_load_is_reported(tmp_path: Path) -> None:
    target, state = store(tmp_path)
    tamper(target, "UPDATE whatsmeow_device SET push_name = 'a,b'")  # neonize splits on commas
    assert "neonize loads the store" in failed(target, state)
    tamper(target, "DELETE FROM whatsmeow_device")
    assert {"neonize loads one device", "device row"} <= failed(target, state)
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"garbage" * 1000)
    assert "store readable" in failed(broken, state)


def test_the_hosted_prefix_is_read_from_the_device_details() -> None:
    assert varint_fields(advice_details(raw_id=9)) == {1: 9, 2: 128, 3: 2}
    assert varint_fields(advice_details(device_type=1))[5] == 1
    assert varint_fields(b"\x12\x02ab\x08\x01\x1d\x00\x00\x00\x00\x21" + bytes(8)) == {1: 1}
    with pytest.raises(ValueError, match="truncated"):
        varint_fields(b"\x08")
    with pytest.raises(ValueError, match="wire type"):
        varint_fields(b"\x0b")


def test_xeddsa_signatures_verify_and_nothing_else_does() -> None:
    key = XKey.signer()
    message = b"\x05" + XKey.generate().public
    signature = key.sign(message)
    assert xeddsa.verify(key.public, message, signature)
    assert not xeddsa.verify(key.public, message + b"x", signature)
    assert not xeddsa.verify(XKey.signer().public, message, signature)
    assert not xeddsa.verify(key.public, message, bytes([signature[0] ^ 1]) + signature[1:])
    assert not xeddsa.verify(key.public, message, signature[:63] + bytes([signature[63] ^ 0x80]))
    assert not xeddsa.verify(key.public[:31], message, signature)
    assert not xeddsa.verify(key.public, message, signature[:63])


def test_xeddsa_agrees_with_libsignal_s_c_implementation() -> None:
    curve = pytest.importorskip("axolotl_curve25519")
    key = XKey.generate()  # an unclamped X25519 key, as Node makes them
    message = os.urandom(100)
    signature = curve.calculateSignature(os.urandom(64), key.private, message)
    assert xeddsa.verify(key.public, message, signature)
    signer = XKey.signer()
    assert curve.verifySignature(signer.public, message, signer.sign(message)) == 0
