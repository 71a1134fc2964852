"""Session files on the connector's volume: one sqlite file per account."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

# Where a linked device is recorded: whatsmeow's device store (neonize, and the engine's
# fake Go core in tests) and the sim transport's credentials table.
_DEVICE_TABLES = ("whatsmeow_device", "device")

_SIDE_FILES = ("-wal", "-shm", "-journal")


def session_files(path: Path) -> list[Path]:
    """The session file and the sqlite side files that may sit beside it."""
    return [path, *(path.with_name(path.name + suffix) for suffix in _SIDE_FILES)]


def wipe_session(path: Path) -> int:
    """Delete an account's session file and its side files; return how many were removed."""
    removed = 0
    for file in session_files(path):
        try:
            file.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def has_session(path: Path) -> bool:
    """Whether the file holds a linked device (a file with only the schema holds none)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return True  # unreadable: assume a device, so that nothing is wiped unlinked
    with contextlib.closing(db):
        try:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            for table in _DEVICE_TABLES:
                if table in names and db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608
                    return True
        except sqlite3.DatabaseError:
            return True
    return False
