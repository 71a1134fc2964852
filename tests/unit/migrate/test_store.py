"""The writer: neonize's own schema, one transaction, all or nothing, never over a target."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from unit.migrate.samples import ME_ID, Sample

from wafleet.migrate import store_schema
from wafleet.migrate.baileys import read_backup_files
from wafleet.migrate.device import build_device
from wafleet.migrate.neonize_probe import ProbeFailed, ProbeResult
from wafleet.migrate.store_schema import SchemaMismatch, check_schema, schema_template
from wafleet.migrate.whatsmeow_store import (
    LidMapRow,
    PreKeyRow,
    StoreRows,
    TargetExists,
    write_store,
)

pytestmark = pytest.mark.neonize


def rows() -> StoreRows:
    device = build_device(read_backup_files(Sample().texts()).creds, None)
    return StoreRows(device=device.row, pre_keys=(PreKeyRow(1, bytes(32), True),))


def test_a_store_is_written_whole_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "account.db"
    write_store(rows(), target)
    assert sorted(os.listdir(tmp_path)) == ["account.db"]  # no temporary file left
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with closing(sqlite3.connect(target)) as db:
        check_schema(db)
        assert db.execute("SELECT jid, push_name FROM whatsmeow_device").fetchall() == [
            (ME_ID, "Corner Shop")
        ]
        assert db.execute("SELECT key_id, uploaded FROM whatsmeow_pre_keys").fetchall() == [(1, 1)]
        assert db.execute("SELECT typeof(noise_key) FROM whatsmeow_device").fetchone() == ("blob",)


def test_an_existing_target_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "account.db"
    target.write_bytes(b"in use")
    with pytest.raises(TargetExists, match="already exists"):
        write_store(rows(), target)
    assert target.read_bytes() == b"in use"
    link = tmp_path / "dangling.db"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(TargetExists):
        write_store(rows(), link)
    assert sorted(os.listdir(tmp_path)) == ["account.db", "dangling.db"]


def test_a_refused_row_leaves_nothing_behind(tmp_path: Path) -> None:
    base = rows()
    broken = StoreRows(device=base.device, lid_map=(LidMapRow("1", "9"), LidMapRow("2", "9")))
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        write_store(broken, tmp_path / "account.db")
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_fails_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_store(rows(), tmp_path / "missing" / "account.db")
    assert os.listdir(tmp_path) == []


def make_db(path: Path, sql: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript(sql)
    return db


def test_a_schema_of_another_version_is_refused(tmp_path: Path) -> None:
    with (
        closing(make_db(tmp_path / "a.db", "CREATE TABLE x (y)")) as db,
        pytest.raises(SchemaMismatch, match="no readable whatsmeow_version"),
    ):
        check_schema(db)
    sql = "CREATE TABLE whatsmeow_version (version INTEGER, compat INTEGER);"
    with (
        closing(
            make_db(tmp_path / "b.db", sql + "INSERT INTO whatsmeow_version VALUES (16, 8)")
        ) as db,
        pytest.raises(SchemaMismatch, match="version 16; this converter writes into version 15"),
    ):
        check_schema(db)


def test_a_schema_without_a_table_or_column_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "t.db"
    template.write_bytes(schema_template())
    with closing(sqlite3.connect(template)) as db:
        db.execute("ALTER TABLE whatsmeow_device DROP COLUMN companion_meta_nonce")
        with pytest.raises(SchemaMismatch, match="lacks columns of whatsmeow_device: companion"):
            check_schema(db)
        db.execute("ALTER TABLE whatsmeow_device ADD COLUMN companion_meta_nonce TEXT")
        db.execute("DROP TABLE whatsmeow_lid_map")
        with pytest.raises(SchemaMismatch, match="lacks the table whatsmeow_lid_map"):
            check_schema(db)


def test_the_schema_is_made_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    first = schema_template()

    def no_more(*args: object, **kwargs: object) -> list[ProbeResult]:
        raise AssertionError("the schema was made twice")

    monkeypatch.setattr(store_schema, "probe", no_more)
    assert schema_template() is first


def test_a_neonize_that_cannot_make_the_schema_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_schema, "_template", None)

    def failing(*args: object, **kwargs: object) -> list[ProbeResult]:
        raise ProbeFailed("neonize cannot be loaded: no module")

    monkeypatch.setattr(store_schema, "probe", failing)
    with pytest.raises(SchemaMismatch, match="could not create the store schema: neonize cannot"):
        schema_template()

    def erring(paths: list[Path], **kwargs: object) -> list[ProbeResult]:
        return [ProbeResult(str(paths[0]), (), "error: disk full")]

    monkeypatch.setattr(store_schema, "probe", erring)
    with pytest.raises(SchemaMismatch, match="disk full"):
        schema_template()
