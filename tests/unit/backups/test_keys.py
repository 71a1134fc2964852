"""The backup key: from WAFLEET_BACKUP_KEY or WAFLEET_BACKUP_KEY_FILE, errors naming them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from wafleet.backups.base import BackupKeyError
from wafleet.backups.crypto import associated_data, load_key, seal, unseal
from wafleet.core.settings import Settings

SECRET = bytes(range(32))
B64 = base64.b64encode(SECRET).decode()


def test_key_from_the_setting_or_a_file(tmp_path: Path) -> None:
    assert load_key(Settings(backup_key=B64, backup_key_id="k7")).secret == SECRET
    assert load_key(Settings(backup_key=B64, backup_key_id="k7")).key_id == "k7"
    text = tmp_path / "key.b64"
    text.write_text(B64 + "\n")  # as a Secret mounted from `openssl rand -base64 32`
    assert load_key(Settings(backup_key_file=text)).secret == SECRET
    raw = tmp_path / "key.bin"
    raw.write_bytes(SECRET)
    assert load_key(Settings(backup_key_file=raw)).secret == SECRET
    assert "secret" not in repr(load_key(Settings(backup_key=B64))).split("(")[1].split("=")[0]
    assert SECRET.hex() not in repr(load_key(Settings(backup_key=B64)))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(), "need a key: set WAFLEET_BACKUP_KEY"),
        (Settings(backup_key="not base64!"), "WAFLEET_BACKUP_KEY is not valid base64"),
        (Settings(backup_key=base64.b64encode(b"short").decode()), "decodes to 5 bytes, not 32"),
        (Settings(backup_key=B64, backup_key_file=Path("/k")), "set only one"),
        (Settings(backup_key_file=Path("/nonexistent/key")), "WAFLEET_BACKUP_KEY_FILE="),
    ],
)
def test_missing_or_bad_keys_name_the_setting(settings: Settings, message: str) -> None:
    with pytest.raises(BackupKeyError, match=message):
        load_key(settings)


def test_associated_data_binds_account_generation_and_key_id() -> None:
    key = load_key(Settings(backup_key=B64))
    aad = associated_data("wa-a", 7, "k1")
    nonce, sealed = seal(key, b"session", aad)
    assert unseal(key, nonce, sealed, aad, "it") == b"session"
    for other in (
        associated_data("wa-b", 7, "k1"),
        associated_data("wa-a", 8, "k1"),
        associated_data("wa-a", 7, "k2"),
    ):
        with pytest.raises(BackupKeyError, match="does not decrypt"):
            unseal(key, nonce, sealed, other, "it")
    assert seal(key, b"session", aad)[0] != nonce  # a fresh nonce each time
