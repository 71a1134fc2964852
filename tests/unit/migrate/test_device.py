"""creds.json → the whatsmeow_device row, the own identity and LID mapping; every refusal."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from unit.migrate.samples import DEVICE, LID_USER, ME_ID, ME_LID, PN_USER, Sample, XKey, buf

from wafleet.migrate.baileys import read_backup_files
from wafleet.migrate.device import build_device, own_identities, own_lid_mapping, push_name_for
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.whatsmeow_store import IdentityRow, LidMapRow


def creds_of(sample: Sample) -> Any:
    return read_backup_files(sample.texts()).creds


def test_the_device_row_holds_the_private_keys_and_pairing_identity() -> None:
    sample = Sample()
    device = build_device(creds_of(sample), None)
    row = device.row
    assert row.jid == ME_ID and row.lid == ME_LID
    assert row.noise_key == sample.noise.private
    assert row.identity_key == sample.identity.private
    assert row.signed_pre_key == sample.signed_pre_key.private
    assert (row.signed_pre_key_id, row.registration_id) == (1, 1234)
    assert row.signed_pre_key_sig == base64.b64decode(
        sample.creds["signedPreKey"]["signature"]["data"]
    )
    assert row.adv_key == base64.b64decode(sample.creds["advSecretKey"])
    account = sample.creds["account"]
    assert row.adv_details == base64.b64decode(account["details"])
    assert row.adv_account_sig_key == sample.account_key.public
    assert row.adv_account_sig == base64.b64decode(account["accountSignature"])
    assert row.adv_device_sig == base64.b64decode(account["deviceSignature"])
    assert (row.platform, row.business_name, row.push_name) == ("smba", "", "Corner Shop")
    assert device.identity_public == sample.identity.public
    assert device.notes == ()


@pytest.mark.parametrize(
    ("me_id", "written"),
    [
        (f"{PN_USER}:{DEVICE}@s.whatsapp.net", ME_ID),
        (f"{PN_USER}.0:{DEVICE}@s.whatsapp.net", ME_ID),  # whatsmeow's agent form, agent 0
        (f" {ME_ID} ", ME_ID),
    ],
)
def test_the_jid_is_written_as_whatsmeow_formats_it(me_id: str, written: str) -> None:
    sample = Sample()
    sample.creds["me"]["id"] = me_id
    assert build_device(creds_of(sample), None).row.jid == written


@pytest.mark.parametrize(
    ("me_id", "what"),
    [
        (f"{PN_USER}@s.whatsapp.net", "device 0, the phone's own"),
        (f"{PN_USER}:{DEVICE}@lid", "server 'lid', not 's.whatsapp.net'"),
        (f"{PN_USER}.1:{DEVICE}@s.whatsapp.net", "has an agent"),
        (f"{PN_USER}:70000@s.whatsapp.net", "more than 65535"),
        ("someone", "is not a user JID"),
    ],
)
def test_a_jid_that_is_not_a_linked_device_is_refused(me_id: str, what: str) -> None:
    sample = Sample()
    sample.creds["me"]["id"] = me_id
    with pytest.raises(Unconvertible, match=what) as raised:
        build_device(creds_of(sample), None)
    assert raised.value.file == "creds.json"


def test_the_lid_takes_the_device_of_the_jid_when_it_has_none() -> None:
    sample = Sample()
    sample.creds["me"]["lid"] = f"{LID_USER}@lid"
    device = build_device(creds_of(sample), None)
    assert device.row.lid == ME_LID
    assert device.notes == ("me.lid has no device; the device of me.id is used",)


def test_a_lid_of_another_device_or_server_is_refused() -> None:
    sample = Sample()
    sample.creds["me"]["lid"] = f"{LID_USER}:3@lid"
    with pytest.raises(Unconvertible, match="name different devices"):
        build_device(creds_of(sample), None)
    sample.creds["me"]["lid"] = f"{LID_USER}:{DEVICE}@s.whatsapp.net"
    with pytest.raises(Unconvertible, match=r"me\.lid is on the server"):
        build_device(creds_of(sample), None)


def test_without_a_lid_the_row_has_none() -> None:
    sample = Sample()
    del sample.creds["me"]["lid"]
    device = build_device(creds_of(sample), None)
    assert device.row.lid is None and own_lid_mapping(device) is None
    assert "no me.lid" in device.notes[0]


@pytest.mark.parametrize(
    ("remove", "what"),
    [
        ("me", "not linked: creds.json has no me"),
        ("account", "not linked: creds.json has no account"),
        ("account.deviceSignature", "has no account.deviceSignature"),
    ],
)
def test_an_account_that_never_finished_pairing_is_not_linked(remove: str, what: str) -> None:
    sample = Sample()
    where = sample.creds
    *parents, leaf = remove.split(".")
    for parent in parents:
        where = where[parent]
    del where[leaf]
    with pytest.raises(Unconvertible, match=what) as raised:
        build_device(creds_of(sample), None)
    assert "left for a normal link" in raised.value.reason


def test_a_private_key_that_does_not_give_its_public_is_refused() -> None:
    sample = Sample()
    sample.creds["noiseKey"]["private"] = buf(XKey.generate().private)
    with pytest.raises(Unconvertible, match=r"noiseKey\.private does not give noiseKey\.public"):
        build_device(creds_of(sample), None)


@pytest.mark.parametrize(
    ("path", "value", "what"),
    [
        ("signedIdentityKey.private", buf(bytes(31)), "signedIdentityKey.private is 31 bytes"),
        ("signedPreKey.keyPair.public", buf(bytes(30)), "public is 30 bytes, not 32 or 33"),
        ("signedPreKey.signature", buf(bytes(63)), "signedPreKey.signature is 63 bytes"),
        ("signedPreKey.keyId", 2**24, r"beyond 2\^24 - 1"),
        ("account.accountSignature", base64.b64encode(bytes(10)).decode(), "10 bytes, not 64"),
        ("account.accountSignatureKey", base64.b64encode(bytes(31)).decode(), "31 bytes, not 32"),
        ("account.details", "", "account.details is empty"),
        ("advSecretKey", "", "advSecretKey is empty"),
    ],
)
def test_a_wrong_length_is_refused_naming_the_field(path: str, value: Any, what: str) -> None:
    sample = Sample()
    where = sample.creds
    *parents, leaf = path.split(".")
    for parent in parents:
        where = where[parent]
    where[leaf] = value
    with pytest.raises(Unconvertible, match=what):
        build_device(creds_of(sample), None)


def test_publics_with_the_type_byte_are_accepted() -> None:
    sample = Sample()
    sample.creds["noiseKey"]["public"] = buf(sample.noise.public05)
    sample.creds["account"]["accountSignatureKey"] = base64.b64encode(
        sample.account_key.public05
    ).decode()
    row = build_device(creds_of(sample), None).row
    assert row.noise_key == sample.noise.private
    assert row.adv_account_sig_key == sample.account_key.public


def test_the_push_name_given_wins_and_one_is_always_written() -> None:
    sample = Sample()
    assert build_device(creds_of(sample), "  Sales Desk ").row.push_name == "Sales Desk"
    assert push_name_for(creds_of(sample), "   ") == "Corner Shop"
    sample.creds["me"]["name"] = ""
    assert push_name_for(creds_of(sample), "Given") == "Given"
    with pytest.raises(Unconvertible, match="no push name"):
        build_device(creds_of(sample), None)


def test_the_primary_identity_comes_from_signal_identities() -> None:
    sample = Sample()
    creds = creds_of(sample)
    device = build_device(creds, None)
    rows, notes = own_identities(creds, device)
    assert rows == [IdentityRow(f"{LID_USER}_1:0", sample.account_key.public)]
    assert notes == []
    assert own_lid_mapping(device) == LidMapRow(LID_USER, PN_USER)


def test_without_signal_identities_the_account_key_is_the_primary_s() -> None:
    sample = Sample()
    del sample.creds["signalIdentities"]
    creds = creds_of(sample)
    rows, notes = own_identities(creds, build_device(creds, None))
    assert rows == [IdentityRow(f"{LID_USER}_1:0", sample.account_key.public)]
    assert "account signature key" in notes[0]


def test_a_garbled_signal_identity_is_refused() -> None:
    sample = Sample()
    sample.creds["signalIdentities"][0]["identifier"]["name"] = "nobody"
    creds = creds_of(sample)
    with pytest.raises(Unconvertible, match=r"signalIdentities\[0\].identifier.name"):
        own_identities(creds, build_device(creds, None))
    sample.creds["signalIdentities"][0]["identifier"]["name"] = ME_LID
    sample.creds["signalIdentities"][0]["identifierKey"] = buf(bytes(20))
    creds = creds_of(sample)
    with pytest.raises(Unconvertible, match=r"identifierKey is 20 bytes"):
        own_identities(creds, build_device(creds, None))
