"""The neonize child: what whatsmeow's own loader makes of each store, and its failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from unit.migrate.samples import ME_ID, Sample

from wafleet.migrate.baileys import read_backup_files
from wafleet.migrate.convert import convert
from wafleet.migrate.neonize_probe import ProbedDevice, ProbeFailed, probe

pytestmark = pytest.mark.neonize


def test_each_path_gets_its_own_answer(tmp_path: Path) -> None:
    store = tmp_path / "good.db"
    convert(read_backup_files(Sample().texts()), store)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    odd = tmp_path / "odd?.db"
    good, bad, refused = probe([store, garbage, odd])
    assert good.error is None
    assert good.devices == (ProbedDevice(ME_ID, "Corner Shop", "", True),)
    assert bad.error is not None and bad.devices == ()
    assert refused.error is not None and "'?' or '#'" in refused.error
    assert not odd.exists()


def test_an_empty_path_gets_whatsmeow_s_schema_and_no_device(tmp_path: Path) -> None:
    (result,) = probe([tmp_path / "new.db"])
    assert (result.error, result.devices) == (None, ())
    assert (tmp_path / "new.db").stat().st_size > 0


def test_a_child_without_an_answer_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(ProbeFailed, match="exited with 1 and no answer"):
        probe([Path("x.db")])


def test_a_child_that_takes_too_long_fails_clearly() -> None:
    with pytest.raises(ProbeFailed, match="did not answer within"):
        probe([Path("x.db")], timeout=0.001)


def fake_neonize(tmp_path: Path) -> Path:
    package = tmp_path / "fake" / "neonize"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the shared library is missing')\n")
    return package.parent


def test_without_neonize_the_child_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(fake_neonize(tmp_path)))
    with pytest.raises(
        ProbeFailed, match="neonize cannot be loaded: the shared library is missing"
    ):
        probe([tmp_path / "x.db"])
    done = subprocess.run(
        [sys.executable, "-m", "wafleet.migrate.neonize_probe", "x.db"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": f"{fake_neonize(tmp_path / 'again')}:{Path.cwd()}"},
    )
    assert json.loads(done.stdout) == {
        "error": "neonize cannot be loaded: the shared library is missing"
    }
