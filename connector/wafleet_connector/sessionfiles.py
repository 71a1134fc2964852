"""Session files on the connector's volume: one sqlite file per account."""

from __future__ import annotations

from pathlib import Path

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
    return path.exists() and path.stat().st_size > 0
