"""Session files and keys for the backup tests."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

from wafleet.backups.crypto import BackupKey

KEY = BackupKey("k1", bytes(range(32)))
OTHER_KEY = BackupKey("k1", bytes(range(1, 33)))
KEY_B64 = base64.b64encode(KEY.secret).decode()


def make_session(path: Path, rows: int = 10, blob: int = 200) -> Path:
    """A session-like sqlite file in WAL mode (as neonize and the sim keep them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("CREATE TABLE IF NOT EXISTS keys (id INTEGER PRIMARY KEY, value BLOB)")
        db.executemany(
            "INSERT INTO keys (value) VALUES (?)", [(os.urandom(blob),) for _ in range(rows)]
        )
        db.commit()
    finally:
        db.close()
    return path


def rows_of(path: Path) -> list[tuple[int, bytes]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT id, value FROM keys ORDER BY id").fetchall()
    finally:
        db.close()
