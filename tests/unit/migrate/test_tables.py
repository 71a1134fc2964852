"""Pre-keys, identity keys, app-state keys and versions, the LID map and tokens → rows."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from unit.migrate.samples import LID_USER, PEER, PEER_LID, PN_USER, Sample, XKey, buf, entry, record

from wafleet.migrate.baileys import read_backup_files
from wafleet.migrate.baileys_model import AuthState, Fingerprint
from wafleet.migrate.device import build_device, own_identities, own_lid_mapping
from wafleet.migrate.errors import Unconvertible
from wafleet.migrate.signal_convert import LocalIdentity
from wafleet.migrate.signal_tables import identity_rows, session_rows
from wafleet.migrate.tables import (
    app_state_key_rows,
    app_state_version_rows,
    fingerprint_bytes,
    lid_map_rows,
    pre_key_rows,
    privacy_token_rows,
)
from wafleet.migrate.whatsmeow_store import IdentityRow, LidMapRow


def state_of(sample: Sample) -> AuthState:
    return read_backup_files(sample.texts())


def test_pre_keys_below_the_first_unuploaded_id_are_uploaded() -> None:
    sample = Sample()
    rows, part = pre_key_rows(state_of(sample))
    assert [(r.key_id, r.uploaded) for r in rows] == [
        (1, True),
        (2, True),
        (3, True),
        (4, False),
        (5, False),
    ]
    assert [r.key for r in rows] == [sample.pre_keys[i].private for i in range(1, 6)]
    assert (part.converted, part.skipped) == (5, ())


def test_a_pre_key_beyond_whatsmeow_s_ids_is_skipped_and_a_wrong_one_refused() -> None:
    sample = Sample()
    sample.files[f"pre-key-{2**24}.json"] = XKey.generate().pair()
    _, part = pre_key_rows(state_of(sample))
    assert [s.item for s in part.skipped] == [f"pre-key-{2**24}.json"]
    sample.files["pre-key-2.json"]["private"] = buf(XKey.generate().private)
    with pytest.raises(Unconvertible, match="does not give") as raised:
        pre_key_rows(state_of(sample))
    assert raised.value.file == "pre-key-2.json"


FINGERPRINTS = [
    Fingerprint(77, 3, (0, 12)),
    Fingerprint(None, 3, ()),
    Fingerprint(0, 0, (2**32 - 1,)),
    Fingerprint(2**31, None, tuple(range(200))),
    Fingerprint(None, None, ()),
]


@pytest.mark.neonize
def test_the_fingerprint_is_the_bytes_neonize_s_protobuf_module_writes() -> None:
    cases = [
        {
            "rawID": f.raw_id,
            "currentIndex": f.current_index,
            "deviceIndexes": list(f.device_indexes),
        }
        for f in FINGERPRINTS
    ]
    script = (
        "import json, sys\n"
        "from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import AppStateSyncKeyFingerprint as F\n"
        "out = []\n"
        "for case in json.loads(sys.argv[1]):\n"
        "    kwargs = {k: v for k, v in case.items() if v is not None and v != []}\n"
        "    out.append(F(**kwargs).SerializeToString().hex())\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(  # the protobuf module loads neonize's library: not in this process
        [sys.executable, "-c", script, json.dumps(cases)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    expected = json.loads(done.stdout.strip().splitlines()[-1])
    assert [fingerprint_bytes(f).hex() for f in FINGERPRINTS] == expected
    assert fingerprint_bytes(None) == b""


def test_app_state_keys_keep_their_id_data_timestamp_and_the_newest_duplicate() -> None:
    sample = Sample()
    original = sample.files["app-state-sync-key-AAAAAAFk.json"]
    sample.files["app-state-sync-key-AAAAAAFk.json"] = {**original, "timestamp": "5"}
    sample.files["app-state-sync-key-AAAAAAFk-.json"] = {}  # "-" decodes to nothing: ignored
    sample.files["app-state-sync-key-AAAAAAFk=.json"] = original  # the same id, padded
    rows, part = app_state_key_rows(state_of(sample))
    (row,) = rows
    assert row.key_id == bytes.fromhex("00000000 0164")
    assert row.timestamp == 1700000000123
    assert row.fingerprint == fingerprint_bytes(Fingerprint(77, 3, (0, 12)))
    assert [s.item for s in part.skipped] == ["app-state-sync-key-AAAAAAFk.json"]


def test_an_app_state_key_without_data_is_refused() -> None:
    sample = Sample()
    sample.files["app-state-sync-key-AAAAAAFk.json"]["keyData"] = ""
    with pytest.raises(Unconvertible, match="keyData is empty"):
        app_state_key_rows(state_of(sample))


def test_app_state_versions_carry_their_macs_at_the_state_version() -> None:
    sample = Sample()
    rows, parts = app_state_version_rows(state_of(sample))
    (row,) = rows
    assert (row.name, row.version, len(row.hash), len(row.macs)) == ("regular_high", 42, 128, 1)
    assert [(p.name, p.converted) for p in parts] == [
        ("app_state_versions", 1),
        ("app_state_mutation_macs", 1),
    ]


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"hash": buf(bytes(127))}, "hash is 127 bytes, not 128"),
        ({"indexValueMap": {"AAAA": {"valueMac": buf(bytes(32))}}}, "not 32 bytes"),
        ({"indexValueMap": {"A" * 44: {"valueMac": buf(bytes(31))}}}, "not 32 bytes"),
    ],
)
def test_a_garbled_app_state_version_is_refused(change: dict[str, Any], what: str) -> None:
    sample = Sample()
    sample.files["app-state-sync-version-regular_high.json"].update(change)
    with pytest.raises(Unconvertible, match=what):
        app_state_version_rows(state_of(sample))


def lid_rows(mappings: dict[str, str], own: LidMapRow | None = None) -> tuple[Any, Any]:
    sample = Sample()
    for name in [n for n in sample.files if n.startswith("lid-mapping-")]:
        del sample.files[name]
    sample.files.update({f"lid-mapping-{k}.json": v for k, v in mappings.items()})
    return lid_map_rows(state_of(sample), own)


def test_the_lid_map_has_the_own_mapping_and_each_pair_once() -> None:
    own = LidMapRow(LID_USER, PN_USER)
    rows, part = lid_rows({PEER: PEER_LID, f"{PEER_LID}_reverse": PEER, "555_reverse": "444"}, own)
    assert rows == [own, LidMapRow("555", "444"), LidMapRow(PEER_LID, PEER)]
    assert part.skipped == ()


def test_when_two_numbers_claim_a_lid_its_reverse_file_decides() -> None:
    rows, part = lid_rows({"111": "900", "222": "900", "900_reverse": "222"})
    assert rows == [LidMapRow("900", "222")]
    assert [s.item for s in part.skipped] == ["lid-mapping-111.json"]
    rows, part = lid_rows({"111": "900", "222": "900"})  # no reverse file: the lowest number
    assert rows == [LidMapRow("900", "111")]
    assert [s.item for s in part.skipped] == ["lid-mapping-222.json"]


def test_the_own_mapping_wins_over_the_files() -> None:
    own = LidMapRow(LID_USER, PN_USER)
    rows, part = lid_rows({PN_USER: "999", "999_reverse": PN_USER}, own)
    assert rows == [own]
    assert {s.item for s in part.skipped} == {
        f"lid-mapping-{PN_USER}.json",
        "lid-mapping-999_reverse.json",
    }


def test_privacy_tokens_need_a_token_and_a_timestamp() -> None:
    sample = Sample()
    sample.files["tctoken-111@lid.json"] = {"token": buf(b""), "senderTimestamp": 5}
    sample.files["tctoken-222@lid.json"] = {"token": buf(b"t")}
    sample.files["tctoken-333@s.whatsapp.net.json"] = {"token": buf(b"u"), "timestamp": 9}
    rows, part = privacy_token_rows(state_of(sample))
    assert [(r.their_jid, r.token, r.timestamp, r.sender_timestamp) for r in rows] == [
        ("333@s.whatsapp.net", b"u", 9, None),
        (f"{PEER_LID}@lid", b"token", 1_700_000_000, 1_700_000_500),
    ]
    reasons = {s.item: s.reason for s in part.skipped}
    assert "holds no token" in reasons["tctoken-111@lid.json"]
    assert "no timestamp" in reasons["tctoken-222@lid.json"]


def test_two_token_files_for_one_user_keep_the_newest() -> None:
    sample = Sample()
    sample.files["tctoken-333-2@s.whatsapp.net.json"] = {"token": buf(b"old"), "timestamp": 5}
    sample.files["tctoken-333@s.whatsapp.net.json"] = {"token": buf(b"new"), "timestamp": 9}
    sample.files["tctoken-333-4@s.whatsapp.net.json"] = {"token": buf(b"older"), "timestamp": 1}
    rows, part = privacy_token_rows(state_of(sample))
    assert ("333@s.whatsapp.net", b"new") in {(r.their_jid, r.token) for r in rows}
    assert {s.item for s in part.skipped} == {
        "tctoken-333-2@s.whatsapp.net.json",
        "tctoken-333-4@s.whatsapp.net.json",
    }


def identities(sample: Sample) -> tuple[list[IdentityRow], Any]:
    state = state_of(sample)
    device = build_device(state.creds, None)
    sessions, _ = session_rows(state, LocalIdentity(b"\x05" + device.identity_public, 1234))
    own, _ = own_identities(state.creds, device)
    return identity_rows(state, sessions, own)


def test_identity_rows_come_from_sessions_files_and_the_own_account() -> None:
    sample = Sample()
    other = XKey.generate()
    sample.files["identity-key-555_1.2.json"] = buf(other.public05)  # no session: kept
    rows, part = identities(sample)
    assert rows == [
        IdentityRow(f"{LID_USER}_1:0", sample.account_key.public),
        IdentityRow(f"{PEER}:0", sample.peer_identity.public),
        IdentityRow("555_1:2", other.public),
    ]
    assert part.notes == ()


def test_the_session_s_identity_wins_over_a_different_identity_file() -> None:
    sample = Sample()
    sample.files[f"identity-key-{PEER}.0.json"] = buf(XKey.generate().public05)
    rows, part = identities(sample)
    assert IdentityRow(f"{PEER}:0", sample.peer_identity.public) in rows
    (note,) = part.notes
    assert "differs from the session's identity key" in note


def test_an_identity_file_of_the_wrong_length_is_refused() -> None:
    sample = Sample()
    sample.files[f"identity-key-{PEER}.0.json"] = buf(bytes(20))
    with pytest.raises(Unconvertible, match="20 bytes, not 33"):
        identities(sample)


def test_skipped_session_records_are_reported_with_their_reason() -> None:
    sample = Sample()
    closed = entry(remote_identity=XKey.generate().public05, closed=3)
    sample.files["session-555.0.json"] = record(closed)
    state = state_of(sample)
    sessions, part = session_rows(state, LocalIdentity(b"\x05" + bytes(32), 1))
    assert [s.address for s in sessions] == [f"{PEER}:0"]
    (skip,) = part.skipped
    assert skip.item == "session-555.0.json" and "no open session" in skip.reason


def test_own_lid_mapping_is_bare_users() -> None:
    state = state_of(Sample())
    assert own_lid_mapping(build_device(state.creds, None)) == LidMapRow(LID_USER, PN_USER)
