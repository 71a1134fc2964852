"""One account end to end: a hand-built Baileys folder → a store neonize loads as the device."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from unit.migrate.samples import (
    GROUP,
    LID_USER,
    ME_ID,
    ME_LID,
    PEER,
    PEER_LID,
    PN_USER,
    Sample,
    XKey,
    buf,
    entry,
    record,
)

from wafleet.migrate.baileys import read_auth_dir, read_backup_files
from wafleet.migrate.convert import Conversion, Unconvertible, convert
from wafleet.migrate.report import SESSIONS
from wafleet.migrate.verify import verify
from wafleet.migrate.whatsmeow_store import TargetExists

pytestmark = pytest.mark.neonize


def converted(tmp_path: Path, sample: Sample | None = None) -> tuple[Conversion, Path, Sample]:
    sample = sample or Sample()
    target = tmp_path / "store" / "account.db"
    target.parent.mkdir()
    conversion = convert(read_auth_dir(sample.write(tmp_path / "legacy")), target)
    return conversion, target, sample


def test_the_account_resumes_as_the_same_device(tmp_path: Path) -> None:
    conversion, target, _ = converted(tmp_path)
    assert (conversion.jid, conversion.lid) == (ME_ID, ME_LID)
    state = read_auth_dir(tmp_path / "legacy")
    verification = verify(target, state)
    assert verification.ok, verification.failures()
    names = {c.name for c in verification.checks}
    assert {"jid", "push name", "device signature", "whatsmeow_sessions rows load"} <= names


def test_every_table_gets_its_rows(tmp_path: Path) -> None:
    _, target, _ = converted(tmp_path)
    with closing(sqlite3.connect(target)) as db:

        def rows(sql: str) -> list[tuple[object, ...]]:
            return db.execute(sql).fetchall()

        assert rows("SELECT our_jid, their_id FROM whatsmeow_sessions") == [(ME_ID, f"{PEER}:0")]
        assert rows("SELECT their_id FROM whatsmeow_identity_keys ORDER BY 1") == [
            (f"{LID_USER}_1:0",),
            (f"{PEER}:0",),
        ]
        assert rows("SELECT chat_id, sender_id FROM whatsmeow_sender_keys") == [
            (GROUP, f"{PEER_LID}_1:3")
        ]
        assert rows("SELECT key_id, uploaded FROM whatsmeow_pre_keys") == [
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 0),
            (5, 0),
        ]
        assert rows("SELECT lid, pn FROM whatsmeow_lid_map ORDER BY 1") == [
            (LID_USER, PN_USER),
            (PEER_LID, PEER),
        ]
        assert rows(
            "SELECT their_jid, timestamp, sender_timestamp FROM whatsmeow_privacy_tokens"
        ) == [(f"{PEER_LID}@lid", 1_700_000_000, 1_700_000_500)]
        assert rows("SELECT name, version FROM whatsmeow_app_state_version") == [
            ("regular_high", 42)
        ]
        assert rows("SELECT count(*) FROM whatsmeow_app_state_mutation_macs") == [(1,)]
        assert rows("SELECT timestamp FROM whatsmeow_app_state_sync_keys") == [(1700000000123,)]
        session = rows("SELECT session FROM whatsmeow_sessions")[0][0]
        assert (
            isinstance(session, bytes)
            and json.loads(session)["SessionState"]["SessionVersion"] == 3
        )


def test_the_report_counts_skips_notes_and_drops(tmp_path: Path) -> None:
    sample = Sample()
    sample.files["session-555.0.json"] = record(
        entry(remote_identity=XKey.generate().public05, closed=9)
    )
    sample.files[f"identity-key-{PEER}.0.json"] = buf(XKey.generate().public05)
    sample.creds["me"]["notify"] = "Shop"
    sample.creds["signedPreKey"]["timestampS"] = 1_700_000_000
    conversion, _, _ = converted(tmp_path, sample)
    report = conversion.report
    sessions = report.part(SESSIONS)
    assert sessions.converted == 1
    assert [s.item for s in sessions.skipped] == ["session-555.0.json"]
    assert "differs from the session's identity key" in report.part("identity_keys").notes[0]
    assert report.push_name == "Corner Shop"
    assert any(d.startswith("creds.json routingInfo: ") for d in report.dropped)
    assert any("device list" in d for d in report.dropped)
    assert "creds.json me.notify: whatsmeow keeps only the push name" in report.dropped
    assert any(d.startswith("creds.json signedPreKey.timestampS: ") for d in report.dropped)
    assert any(d.startswith("session records' indexInfo") for d in report.dropped)
    text = "\n".join(report.lines())
    assert "sessions: 1 converted, 1 skipped" in text
    assert PEER not in text and PN_USER not in text  # phone numbers masked


def test_an_unconvertible_account_leaves_no_target(tmp_path: Path) -> None:
    sample = Sample()
    del sample.creds["account"]
    target = tmp_path / "account.db"
    with pytest.raises(Unconvertible, match="not linked"):
        convert(read_backup_files(sample.texts()), target)
    assert os.listdir(tmp_path) == []


def test_an_existing_target_is_left_as_it_is(tmp_path: Path) -> None:
    target = tmp_path / "account.db"
    target.write_bytes(b"used by wafleet")
    with pytest.raises(TargetExists):
        convert(read_backup_files(Sample().texts()), target)
    assert target.read_bytes() == b"used by wafleet"


def test_the_legacy_folder_is_never_written(tmp_path: Path) -> None:
    folder = Sample().write(tmp_path / "legacy")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    state = read_auth_dir(folder)
    with pytest.raises(ValueError, match="inside the legacy session folder"):
        convert(state, folder / "account.db")
    convert(state, tmp_path / "account.db")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_the_backup_map_converts_to_the_same_device(tmp_path: Path) -> None:
    sample = Sample()
    conversion = convert(read_backup_files(sample.texts()), tmp_path / "a.db", push_name="Desk")
    assert conversion.jid == ME_ID
    assert conversion.report.push_name == "Desk"
    assert "the push name given replaces me.name" in conversion.report.part("device").notes
    assert verify(tmp_path / "a.db", read_backup_files(sample.texts()), push_name="Desk").ok
    other = convert(read_backup_files(sample.texts()), tmp_path / "b.db", push_name="Ana, Desk")
    assert "holds a comma" in other.report.part("device").notes[1]


def test_the_log_line_masks_the_phone_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="wafleet.migrate.convert"):
        convert(read_backup_files(Sample().texts()), tmp_path / "a.db")
    (message,) = [r.getMessage() for r in caplog.records]
    assert "converted the legacy session of" in message
    assert PN_USER not in message
