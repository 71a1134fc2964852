"""The generated legacy folders hold what a legacy Baileys 7 server writes (no converter here)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

if TYPE_CHECKING:
    from migration.conftest import Generate, LegacyFixture

pytestmark = pytest.mark.migration

# every category a paired, active Baileys 7 (rc13+) account writes
CATEGORIES = (
    "pre-key",
    "session",
    "identity-key",
    "app-state-sync-key",
    "app-state-sync-version",
    "lid-mapping",
    "sender-key",
    "sender-key-memory",
    "tctoken",
    "device-list",
)


def buffer(value: object) -> bytes:
    assert isinstance(value, dict), value
    assert value["type"] == "Buffer"
    return base64.b64decode(value["data"])


def test_account_ids_are_the_legacy_ids(legacy: LegacyFixture) -> None:
    phones = [a.expected["phone"] for a in legacy.accounts]
    assert len(set(phones)) == len(phones)
    for account in legacy.accounts:
        phone = account.expected["phone"]
        assert re.fullmatch(r"\+4071234560\d", phone)
        digest = hashlib.sha256(phone.encode()).hexdigest()[:32]
        assert account.account_id == f"account_prod_{digest}"
        assert account.folder.name == account.account_id


def test_env_is_part_of_the_id(generate_legacy: Generate) -> None:
    staging = generate_legacy(1, env="staging")
    (account,) = staging.accounts
    digest = hashlib.sha256(account.expected["phone"].encode()).hexdigest()[:32]
    assert account.account_id == f"account_staging_{digest}"


def test_every_account_has_the_full_set_of_files(legacy: LegacyFixture) -> None:
    for account in legacy.accounts:
        names = sorted(p.name for p in account.folder.iterdir())
        assert "creds.json" in names
        for category in CATEGORIES:
            # longest category first, as a reader must: sender-key-memory is not a sender-key
            others = [c for c in CATEGORIES if c != category and c.startswith(category)]
            found = [
                n
                for n in names
                if n.startswith(f"{category}-") and not any(n.startswith(f"{o}-") for o in others)
            ]
            assert found, f"{account.account_id} has no {category}-*.json"


def test_file_names_use_baileys_escapes(legacy: LegacyFixture) -> None:
    for account in legacy.accounts:
        names = {p.name for p in account.folder.iterdir()}
        me = account.expected["me"]
        key_id = account.expected["app_state_sync_keys"][0]["key_id"]
        assert "/" in key_id
        assert f"app-state-sync-key-{key_id.replace('/', '__')}.json" in names
        assert any(re.fullmatch(r"session-\d+_1\.\d+\.json", n) for n in names), "no LID session"
        assert "tctoken-__index.json" in names  # Baileys' index sentinel, not a token
        lid_user = me["lid"].split(":")[0]
        pn_user = me["id"].split(":")[0]
        assert json.loads((account.folder / f"lid-mapping-{pn_user}.json").read_text()) == lid_user
        reverse = account.folder / f"lid-mapping-{lid_user}_reverse.json"
        assert json.loads(reverse.read_text()) == pn_user
        assert any(n.startswith("sender-key-") and "--" in n for n in names)


def test_creds_hold_the_pairing_and_the_expected_publics(legacy: LegacyFixture) -> None:
    for account in legacy.accounts:
        creds = json.loads((account.folder / "creds.json").read_text())
        expected = account.expected
        assert creds["me"] == expected["me"]
        assert creds["registrationId"] == expected["registration_id"]
        for part, name in (
            ("signedIdentityKey", "identity"),
            ("noiseKey", "noise"),
        ):
            private = buffer(creds[part]["private"])
            public = X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
            assert base64.b64encode(public).decode() == expected["keys"][name]
        spk = creds["signedPreKey"]
        assert (
            base64.b64encode(buffer(spk["keyPair"]["public"])).decode()
            == (expected["keys"]["signed_pre_key"])
        )
        # the pairing went through configureSuccessfulPairing: protobuf toJSON strings
        assert set(creds["account"]) == {
            "details",
            "accountSignatureKey",
            "accountSignature",
            "deviceSignature",
        }
        assert creds["account"]["accountSignatureKey"] == expected["keys"]["account_signature_key"]
        assert creds["firstUnuploadedPreKeyId"] == expected["first_unuploaded_pre_key_id"]


def test_kept_messages_cover_every_proof(legacy: LegacyFixture) -> None:
    labels = {"m4", "m6", "m2", "m1b", "pkmsg5", "l2", "e2", "e3", "g2", "grp4", "grp2"}
    for account in legacy.accounts:
        messages = account.expected["messages"]
        assert {m["label"] for m in messages} == labels
        for message in messages:
            assert (
                message["their_id" if message["type"] != "skmsg" else "sender_id"].count(":") == 1
            )
            assert base64.b64decode(message["ciphertext"])
        # pkmsg5 needs a one-time pre-key the account still has
        (pkmsg5,) = [m for m in messages if m["label"] == "pkmsg5"]
        assert (account.folder / f"pre-key-{pkmsg5['pre_key_id']}.json").is_file()
        assert str(pkmsg5["pre_key_id"]) in account.expected["pre_keys"]
