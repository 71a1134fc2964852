"""Reading a Baileys auth state: file names, categories, the backup map, and every refusal."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from unit.migrate.samples import (
    GROUP,
    LID_USER,
    ME_ID,
    PEER,
    PEER_LID,
    PN_USER,
    Sample,
    buf,
    entry,
    record,
)

from wafleet.migrate.baileys import parse_file_name, read_auth_dir, read_backup_files
from wafleet.migrate.baileys_model import AuthState
from wafleet.migrate.errors import Unconvertible


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("pre-key-12.json", ("pre-key", "12")),
        ("session-40712345678.0.json", ("session", "40712345678.0")),
        ("sender-key-memory-1203@g.us.json", ("sender-key-memory", "1203@g.us")),
        ("sender-key-1203@g.us--4071_1--3.json", ("sender-key", "1203@g.us--4071_1--3")),
        ("app-state-sync-version-regular_low.json", ("app-state-sync-version", "regular_low")),
        ("app-state-sync-key-AAB__c.json", ("app-state-sync-key", "AAB__c")),
        ("identity-key-1234_1.3.json", ("identity-key", "1234_1.3")),
        ("tctoken-__index.json", ("tctoken", "__index")),
        ("creds.json", None),
        ("pre-key-.json", None),
        ("session-1.0.json.bak", None),
        ("contacts.json", None),
    ],
)
def test_file_names_map_to_their_category_longest_first(
    name: str, parsed: tuple[str, str] | None
) -> None:
    assert parse_file_name(name) == parsed


def read(sample: Sample, tmp_path: Path) -> AuthState:
    return read_auth_dir(sample.write(tmp_path / "legacy"))


def test_a_folder_is_read_into_every_category(tmp_path: Path) -> None:
    sample = Sample()
    state = read(sample, tmp_path)
    assert state.source_dir == tmp_path / "legacy"
    assert state.creds.me is not None and state.creds.me.id == ME_ID
    assert state.creds.noise_key.private == sample.noise.private
    assert state.creds.first_unuploaded_pre_key_id == 4
    assert [k.key_id for k in state.pre_keys] == [1, 2, 3, 4, 5]
    assert [s.address for s in state.sessions] == [f"{PEER}.0"]
    assert [k.key for k in state.identity_keys] == [sample.peer_identity.public05]
    (sender_key,) = state.sender_keys
    assert (sender_key.group, sender_key.sender, sender_key.device) == (GROUP, f"{PEER_LID}_1", 3)
    assert [s.key_id for s in sender_key.states] == [7, 9]  # Baileys' order, oldest first
    assert state.app_state_keys[0].timestamp == 1700000000123
    assert state.app_state_versions[0].version == 42
    assert {(m.key, m.value, m.reverse) for m in state.lid_mappings} == {
        (PEER, PEER_LID, False),
        (PEER_LID, PEER, True),
    }
    assert [(t.jid, t.sender_timestamp) for t in state.tc_tokens] == [
        (f"{PEER_LID}@lid", 1_700_000_500)
    ]
    assert "routingInfo" in state.creds.other_fields and "me" not in state.creds.other_fields
    ignored = {i.file for i in state.ignored}
    assert ignored == {
        "tctoken-__index.json",
        f"device-list-{PEER}.json",
        f"sender-key-memory-{GROUP}.json",
    }


def test_names_are_turned_back_where_their_category_can_hold_slash_or_colon(
    tmp_path: Path,
) -> None:
    sample = Sample()
    key_id = b"\xff\xfe\x01/x"  # its base64 holds a "/"
    encoded = base64.b64encode(key_id).decode()
    assert "/" in encoded
    sample.files[f"app-state-sync-key-{encoded.replace('/', '__')}.json"] = {
        "keyData": base64.b64encode(b"k" * 32).decode(),
        "timestamp": 5,
    }
    old_group = "40712345678-1612345678@g.us"  # an old group id holds a "-"
    sample.files[f"sender-key-{old_group}--{PEER}--0.json"] = buf(b"[]")
    sample.files[f"tctoken-{PEER}-3@s.whatsapp.net.json"] = {"token": buf(b"t"), "timestamp": 1}
    state = read(sample, tmp_path)
    assert key_id in {k.key_id for k in state.app_state_keys}
    assert (old_group, PEER, 0) in {(s.group, s.sender, s.device) for s in state.sender_keys}
    assert f"{PEER}@s.whatsapp.net" in {t.jid for t in state.tc_tokens}  # the device dropped


def test_names_whatsmeow_cannot_key_are_ignored_with_a_reason(tmp_path: Path) -> None:
    sample = Sample()
    sample.files["session-status@broadcast.0.json"] = record()
    sample.files["pre-key-x.json"] = {}
    sample.files["sender-key-nogroup--1--0.json"] = buf(b"[]")
    sample.files["lid-mapping-abc.json"] = "1"
    sample.files["tctoken-status@broadcast.json"] = {}
    sample.files["app-state-sync-key-!!.json"] = {}
    sample.files["notes.json"] = {}
    state = read(sample, tmp_path)
    (tmp_path / "legacy" / "README").write_text("not json")  # not .json: never read
    state = read_auth_dir(tmp_path / "legacy")
    reasons = {i.file: i.reason for i in state.ignored}
    assert "not a Signal address" in reasons["session-status@broadcast.0.json"]
    assert "not a number" in reasons["pre-key-x.json"]
    assert "<group>--<sender>--<device>" in reasons["sender-key-nogroup--1--0.json"]
    assert "lid-mapping-<user>" in reasons["lid-mapping-abc.json"]
    assert "not a user JID" in reasons["tctoken-status@broadcast.json"]
    assert "not base64" in reasons["app-state-sync-key-!!.json"]
    assert reasons["notes.json"] == reasons["README"] == "not a Baileys auth-state file"


def test_the_backup_map_reads_like_the_folder_json_or_base64(tmp_path: Path) -> None:
    sample = Sample()
    from_dir = read(sample, tmp_path)
    texts = sample.texts()
    mixed: dict[str, Any] = {
        name: base64.b64encode(text.encode()).decode() if i % 2 else text
        for i, (name, text) in enumerate(texts.items())
    }
    mixed["creds.json"] = texts["creds.json"].encode()  # bytes are accepted too
    from_backup = read_backup_files(mixed)
    assert from_backup.source_dir is None
    assert from_backup.creds == from_dir.creds
    assert from_backup.sessions == from_dir.sessions
    assert from_backup.sender_keys == from_dir.sender_keys
    assert set(from_backup.pre_keys) == set(from_dir.pre_keys)


@pytest.mark.parametrize("value", ["%%% not json nor base64", b"\xff\xfe", 12])
def test_an_undecodable_backup_value_is_left_out_naming_its_file(value: Any) -> None:
    files: dict[str, Any] = {**Sample().texts(), "pre-key-3.json": value}
    state = read_backup_files(files)  # the device is kept: one key file is not worth it
    assert 3 not in {k.key_id for k in state.pre_keys}
    [left_out] = [i for i in state.ignored if i.file == "pre-key-3.json"]
    assert left_out.reason.startswith("damaged: ")


@pytest.mark.parametrize("value", ["%%% not json nor base64", b"\xff\xfe", 12])
def test_an_undecodable_creds_is_the_accounts_end(value: Any) -> None:
    files: dict[str, Any] = {**Sample().texts(), "creds.json": value}
    with pytest.raises(Unconvertible) as raised:
        read_backup_files(files)
    assert raised.value.file == "creds.json"
    assert "left for a normal link" in raised.value.reason


def test_without_creds_the_account_is_not_linked(tmp_path: Path) -> None:
    with pytest.raises(Unconvertible, match=r"no creds\.json: not linked"):
        read_backup_files({"pre-key-1.json": "{garbled"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(Unconvertible, match="not linked"):
        read_auth_dir(tmp_path / "empty")
    with pytest.raises(Unconvertible, match="does not exist or is not a folder"):
        read_auth_dir(tmp_path / "missing")


class Raw(str):
    """File text as is (not JSON-encoded)."""


def garble(sample: Sample, name: str, value: Any) -> dict[str, str]:
    texts = sample.texts()
    texts[name] = value if isinstance(value, Raw) else json.dumps(value)
    return texts


def session_with(**changes: Any) -> dict[str, Any]:
    data = record(entry(remote_identity=b"\x05" + bytes(32)))
    (only,) = data["_sessions"].values()
    for path, value in changes.items():
        where = only
        *parents, leaf = path.split(".")
        for parent in parents:
            where = where[parent]
        where[leaf] = value
    return data


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [
        ("creds.json", Raw("{not json"), "neither JSON text nor base64"),
        ("creds.json", {"noiseKey": {}}, "noiseKey.private is not a buffer"),
        ("pre-key-1.json", {"private": buf(b"x")}, "pre-key.public is not a buffer"),
        (f"session-{PEER}.0.json", {"version": "v2"}, "version is 'v2'"),
        (f"session-{PEER}.0.json", session_with(**{"indexInfo.closed": "no"}), "closed"),
        (
            f"session-{PEER}.0.json",
            session_with(_chains={"BQ==": {"chainKey": {"counter": 0}, "chainType": 3}}),
            "neither sending (1) nor receiving (2)",
        ),
        (
            f"session-{PEER}.0.json",
            session_with(_chains={"BQ==": {"chainKey": {"counter": -2}, "chainType": 2}}),
            "counter is -2",
        ),
        (f"identity-key-{PEER}.0.json", "@@@", "identity key is not base64"),
        (f"sender-key-{GROUP}--{PEER}--0.json", buf(b"{nope"), "not UTF-8 JSON"),
        (f"sender-key-{GROUP}--{PEER}--0.json", buf(b"[{}]"), "state[0].senderChainKey"),
        (f"lid-mapping-{PEER}.json", "123@lid", "not a bare user number"),
        (f"lid-mapping-{PEER}.json", 5, "lid mapping is not a string"),
        (f"tctoken-{PEER_LID}@lid.json", {"token": 5}, "token is not a buffer"),
        ("app-state-sync-version-regular.json", {"version": 1, "hash": 3}, "hash"),
        ("app-state-sync-key-AAAAAAFk.json", {"keyData": []}, "keyData"),
    ],
)
def test_garbled_content_names_the_file_and_what_is_wrong(
    tmp_path: Path, name: str, value: Any, what: str
) -> None:
    texts = garble(Sample(), name, value)
    if name == "creds.json":  # no device without it
        with pytest.raises(Unconvertible) as raised:
            read_backup_files(texts)
        assert raised.value.file == name
        assert what in raised.value.what
        return
    state = read_backup_files(texts)  # a key file: left out, the rest kept
    [left_out] = [i for i in state.ignored if i.file == name]
    assert left_out.reason.startswith("damaged: ") and what in left_out.reason


def test_a_reason_masks_the_phone_numbers_of_file_names() -> None:
    refused = Unconvertible(f"identity-key-{PEER}.0.json", "is not JSON")
    assert PEER not in refused.reason
    assert PEER[:4] + "****" in refused.reason
    assert refused.file == f"identity-key-{PEER}.0.json"  # the raw name stays available


def test_a_damaged_key_file_is_left_out_and_an_unreadable_one_refused(tmp_path: Path) -> None:
    folder = Sample().write(tmp_path / "legacy")
    (folder / "pre-key-1.json").write_bytes(b"\xff\xfe")
    state = read_auth_dir(folder)
    assert [i.reason for i in state.ignored if i.file == "pre-key-1.json"] == [
        "damaged: is not UTF-8 text; left out (WhatsApp sets up what it held again)"
    ]
    (folder / "pre-key-1.json").unlink()
    (folder / "pre-key-1.json").mkdir()  # not a file: skipped as no auth-state file at all
    (folder / "creds.json").chmod(0)
    if os.access(folder / "creds.json", os.R_OK):  # root reads anything: nothing to prove
        return
    with pytest.raises(Unconvertible, match="cannot be read") as raised:
        read_auth_dir(folder)
    assert raised.value.file == "creds.json"


def test_a_record_without_version_gets_node_s_v1_migration() -> None:
    sample = Sample()
    data = record(entry(remote_identity=b"\x05" + bytes(32), registration_id=None))
    del data["version"]
    data["registrationId"] = 321
    texts = garble(sample, f"session-{PEER}.0.json", data)
    (session,) = read_backup_files(texts).sessions
    assert [e.registration_id for e in session.entries] == [321]


def test_reading_changes_nothing_in_the_folder(tmp_path: Path) -> None:
    folder = Sample().write(tmp_path / "legacy")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    read_auth_dir(folder)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before


def test_me_and_account_are_optional_for_the_reader() -> None:
    sample = Sample()
    del sample.creds["me"]
    del sample.creds["account"]
    creds = read_backup_files(sample.texts()).creds
    assert creds.me is None and creds.account is None
    assert PN_USER and LID_USER  # the sample's numbers are the module's
