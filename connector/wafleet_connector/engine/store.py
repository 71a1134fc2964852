"""What a session store file holds, read the same way for whatsmeow's store and the fake's.

whatsmeow's sqlstore keeps the linked device in table ``whatsmeow_device``, one row per
device, keyed by its ``jid`` (``store/sqlstore/upgrades/00-latest-schema.sql``); pairing
writes the row, a logout or a server-side unlink deletes it (``Store.Delete``). A file
with only the schema (a connect that never paired) holds no device.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def linked_device_jid(path: Path) -> str | None:
    """The jid of the device linked in the session store at ``path``, or None.

    Reads the file read-only and closes it at once (the Go client may have it open).
    """
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT jid FROM whatsmeow_device LIMIT 1").fetchone()
    except sqlite3.Error:  # no such table (never set up), or not a database
        return None
    finally:
        conn.close()
    return str(row[0]) if row and row[0] else None
