"""The conversion only reads the legacy folder, and fails whole rather than half-written."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from migration.conftest import LegacyAccount, LegacyFixture

pytestmark = pytest.mark.migration


def snapshot(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry under root: mode, size, mtime and content digest."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return found


def copy_account(account: LegacyAccount, where: Path) -> Path:
    folder: Path = where / "sessions" / account.account_id
    shutil.copytree(account.folder, folder)
    return folder


def convert_folder(folder: Path, target: Path) -> Any:
    from wafleet.migrate.baileys import read_auth_dir  # noqa: PLC0415 (the code under test)
    from wafleet.migrate.convert import convert  # noqa: PLC0415

    return convert(read_auth_dir(folder), target)


def test_conversion_never_writes_to_the_legacy_folder(
    legacy: LegacyFixture, tmp_path: Path
) -> None:
    sessions = tmp_path / "legacy"
    folders = [copy_account(account, sessions) for account in legacy.accounts]
    before = snapshot(sessions)
    assert len(before) > 3 * 40  # files, not an empty tree
    out = tmp_path / "out"
    out.mkdir()
    for folder in folders:
        convert_folder(folder, out / f"{folder.name}.db")
    assert snapshot(sessions) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{f.name}.db" for f in folders)


def creds_of(folder: Path) -> dict[str, Any]:
    creds: dict[str, Any] = json.loads((folder / "creds.json").read_text())
    return creds


def write_creds(folder: Path, creds: object) -> None:
    (folder / "creds.json").write_text(json.dumps(creds))


def garble_text(text: bytes) -> Callable[[Path], None]:
    def garble(folder: Path) -> None:
        (folder / "creds.json").write_bytes(text)

    return garble


def truncated(folder: Path) -> None:
    raw = (folder / "creds.json").read_bytes()
    (folder / "creds.json").write_bytes(raw[: len(raw) // 2])


def never_paired(folder: Path) -> None:
    creds = creds_of(folder)
    for field in ("me", "account", "signalIdentities", "platform"):
        creds.pop(field, None)
    write_creds(folder, creds)


def short_noise_key(folder: Path) -> None:
    creds = creds_of(folder)
    creds["noiseKey"]["private"]["data"] = "AAECAwQFBgcICQoLDA0ODw=="  # 16 bytes
    write_creds(folder, creds)


def swapped_identity_key(folder: Path) -> None:
    creds = creds_of(folder)
    creds["signedIdentityKey"]["private"] = creds["noiseKey"]["private"]
    write_creds(folder, creds)


def no_account_signature(folder: Path) -> None:
    creds = creds_of(folder)
    del creds["account"]["accountSignature"]
    write_creds(folder, creds)


def missing(folder: Path) -> None:
    (folder / "creds.json").unlink()


GARBLED = {
    "not JSON": garble_text(b"{not json"),
    "empty file": garble_text(b""),
    "truncated": truncated,
    "JSON array": garble_text(b"[]"),
    "unknown shape": garble_text(b'{"hello": "world"}'),
    "never paired": never_paired,
    "16-byte noise key": short_noise_key,
    "identity private key of another pair": swapped_identity_key,
    "no account signature": no_account_signature,
    "no creds.json": missing,
}


@pytest.mark.parametrize("garble", list(GARBLED.values()), ids=list(GARBLED))
def test_unconvertible_creds_give_the_error_and_no_target(
    garble: Callable[[Path], None], legacy: LegacyFixture, tmp_path: Path
) -> None:
    from wafleet.migrate.convert import Unconvertible  # noqa: PLC0415 (the code under test)

    account = legacy.accounts[0]
    folder = copy_account(account, tmp_path / "legacy")
    garble(folder)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Unconvertible) as caught:
        convert_folder(folder, out / "target.db")
    reason = getattr(caught.value, "reason", str(caught.value))
    assert isinstance(reason, str)
    assert reason.strip()
    assert list(out.iterdir()) == []  # no target, no temporary file left next to it


def test_conversion_logs_no_phone_number(
    legacy: LegacyFixture, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Project rule: a phone number is never unmasked in a log line."""
    account = legacy.accounts[1]
    expected = account.expected
    phones = {expected["me"]["id"].split(":")[0]} | {pair["pn"] for pair in expected["lid_map"]}
    phones |= {
        m["their_id"].split(":")[0]
        for m in expected["messages"]
        if "their_id" in m and "_" not in m["their_id"]
    }
    assert all(re.fullmatch(r"\d{10,15}", p) for p in phones)
    with caplog.at_level(logging.DEBUG):
        convert_folder(account.folder, tmp_path / "target.db")
        from wafleet.migrate.convert import Unconvertible  # noqa: PLC0415

        broken = copy_account(account, tmp_path / "legacy")
        never_paired(broken)
        with pytest.raises(Unconvertible) as caught:
            convert_folder(broken, tmp_path / "broken.db")
    lines = [record.getMessage() for record in caplog.records]
    lines.append(getattr(caught.value, "reason", str(caught.value)))
    for line in lines:
        for phone in phones:
            assert phone not in line, line
