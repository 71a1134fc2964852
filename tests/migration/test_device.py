"""The converted device row: whatsmeow's own loader sees the same device, with Baileys' keys.

Everything here reads only the SQLite file the converter wrote (and expected.json).
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import axolotl_curve25519
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

if TYPE_CHECKING:
    from migration.conftest import Converted, LegacyFixture

pytestmark = pytest.mark.migration

NEONIZE_TIMEOUT = 60

# neonize leaks the sqlite handles and loads a Go .so: keep it out of the pytest process.
NEONIZE_PROBE = """
import json, sys
from neonize.client import ClientFactory
from neonize.utils.jid import Jid2String
devices = ClientFactory.get_all_devices_from_db(sys.argv[1])
print(json.dumps([
    {"jid": Jid2String(d.JID), "push_name": d.PushName, "business_name": d.BussinessName,
     "initialized": d.Initialized}
    for d in devices
]))
"""

# research §3 (whatsmeow pair.go, Baileys validate-connection.js)
ADV_ACCOUNT_SIG_PREFIX = bytes([6, 0])
ADV_DEVICE_SIG_PREFIX = bytes([6, 1])

DEVICE_COLUMNS = (
    "jid, lid, registration_id, noise_key, identity_key, signed_pre_key, signed_pre_key_id,"
    " signed_pre_key_sig, adv_key, adv_details, adv_account_sig, adv_account_sig_key,"
    " adv_device_sig, platform, business_name, push_name"
)


def neonize_devices(store: Path, scratch: Path) -> list[dict[str, Any]]:
    """whatsmeow's GetAllDevices (sqlstore.New, Upgrade, scanDevice) on a copy of the store."""
    copy = scratch / store.name
    shutil.copyfile(store, copy)
    result = subprocess.run(
        [sys.executable, "-c", NEONIZE_PROBE, str(copy)],
        capture_output=True,
        text=True,
        timeout=NEONIZE_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"neonize failed:\n{result.stderr[-4000:]}"
    devices: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    return devices


def device_row(store: Path) -> dict[str, Any]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        rows = db.execute(f"SELECT {DEVICE_COLUMNS} FROM whatsmeow_device").fetchall()
    finally:
        db.close()
    assert len(rows) == 1, f"whatsmeow_device holds {len(rows)} rows"
    return dict(rows[0])


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def xeddsa_valid(public: bytes, message: bytes, signature: bytes) -> bool:
    """XEdDSA verification (python-axolotl-curve25519: 0 means valid)."""
    result: int = axolotl_curve25519.verifySignature(public, message, signature)
    return result == 0


def test_neonize_loads_the_same_device(converted: tuple[Converted, ...], tmp_path: Path) -> None:
    for c in converted:
        me = c.account.expected["me"]
        devices = neonize_devices(c.store, tmp_path)
        assert devices == [
            {"jid": me["id"], "push_name": me["name"], "business_name": "", "initialized": True}
        ], c.account.account_id


def test_conversion_reports_the_jid_and_lid(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        me = c.account.expected["me"]
        assert c.conversion.jid == me["id"]
        assert c.conversion.lid == me["lid"]
        row = device_row(c.store)
        assert row["jid"] == me["id"]
        assert row["lid"] == me["lid"]


def test_push_name_can_be_chosen(legacy: LegacyFixture, tmp_path: Path) -> None:
    from wafleet.migrate.baileys import read_auth_dir  # noqa: PLC0415 (the code under test)
    from wafleet.migrate.convert import convert  # noqa: PLC0415

    account = legacy.accounts[0]
    target = tmp_path / "named.db"
    convert(read_auth_dir(account.folder), target, push_name="Front Desk Ploiești")
    scratch = tmp_path / "neonize"
    scratch.mkdir()
    (device,) = neonize_devices(target, scratch)
    assert device["jid"] == account.expected["me"]["id"]
    assert device["push_name"] == "Front Desk Ploiești"


def test_stored_private_keys_give_baileys_public_keys(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        keys = c.account.expected["keys"]
        row = device_row(c.store)
        for column, name in (
            ("noise_key", "noise"),
            ("identity_key", "identity"),
            ("signed_pre_key", "signed_pre_key"),
        ):
            assert len(row[column]) == 32, column
            assert b64(x25519_public(row[column])) == keys[name], column
        assert row["signed_pre_key_id"] == keys["signed_pre_key_id"]
        assert row["registration_id"] == c.account.expected["registration_id"]
        assert b64(row["adv_account_sig_key"]) == keys["account_signature_key"]


def test_signatures_verify_with_xeddsa(converted: tuple[Converted, ...]) -> None:
    for c in converted:
        row = device_row(c.store)
        identity = x25519_public(row["identity_key"])
        spk = x25519_public(row["signed_pre_key"])
        details = row["adv_details"]
        account_key = row["adv_account_sig_key"]
        assert len(row["signed_pre_key_sig"]) == 64
        assert len(row["adv_account_sig"]) == 64
        assert len(row["adv_device_sig"]) == 64
        assert len(row["adv_key"]) == 32
        assert xeddsa_valid(identity, b"\x05" + spk, row["signed_pre_key_sig"])
        account_msg = ADV_ACCOUNT_SIG_PREFIX + details + identity
        assert xeddsa_valid(account_key, account_msg, row["adv_account_sig"])
        device_msg = ADV_DEVICE_SIG_PREFIX + details + identity + account_key
        assert xeddsa_valid(identity, device_msg, row["adv_device_sig"])


def test_xeddsa_check_rejects_a_wrong_signature(converted: tuple[Converted, ...]) -> None:
    """The check above can fail: one flipped bit, or the other key, is rejected."""
    row = device_row(converted[0].store)
    identity = x25519_public(row["identity_key"])
    spk = x25519_public(row["signed_pre_key"])
    signature = bytearray(row["signed_pre_key_sig"])
    signature[5] ^= 0x01
    assert not xeddsa_valid(identity, b"\x05" + spk, bytes(signature))
    assert not xeddsa_valid(spk, b"\x05" + spk, row["signed_pre_key_sig"])
