"""Consistent snapshots of a session's sqlite file, and putting one back without overwriting.

Blocking functions: call them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import zlib
from pathlib import Path

from wafleet.backups.base import BackupCorruptError

COMPRESSION_LEVEL = 6
_SIDE_FILES = ("-wal", "-journal")
_REPLACED_SIDE_FILES = ("-wal", "-shm", "-journal")


def take_snapshot(path: Path) -> bytes | None:
    """The database at ``path`` as one consistent image (sqlite backup API); None if absent.

    The backup API copies every page under one read transaction, so writers (the
    live session) are not blocked and the copy is a committed state, WAL included.
    The file is opened read-write without create: a missing file stays missing.
    """
    if not path.exists() or path.stat().st_size == 0:
        return None
    source = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10)
    try:
        copy = sqlite3.connect(":memory:")
        try:
            source.backup(copy)
            return copy.serialize()
        finally:
            copy.close()
    finally:
        source.close()


def compress(data: bytes) -> bytes:
    return zlib.compress(data, COMPRESSION_LEVEL)


def decompress(data: bytes, limit: int) -> bytes:
    """Inflate at most ``limit`` bytes (the manifest's size), so a bad blob cannot balloon."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BackupCorruptError(f"the backup does not decompress: {exc}") from None
    if len(out) > limit or not inflater.eof:
        raise BackupCorruptError("the backup decompresses to more than its recorded size")
    return out


def check_database(data: bytes) -> None:
    """BackupCorruptError unless ``data`` is a sqlite database that passes quick_check."""
    image = bytearray(data)
    if len(image) < 100 or not image.startswith(b"SQLite format 3\0"):
        raise BackupCorruptError("the restored image is not a sqlite database")
    image[18] = image[19] = 1  # WAL databases cannot be deserialized as such; check as rollback
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(bytes(image))
        result = db.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupCorruptError(f"the restored database is damaged: {exc}") from None
    finally:
        db.close()
    if result is None or result[0] != "ok":
        raise BackupCorruptError(f"the restored database fails quick_check: {result}")


def is_missing(path: Path) -> bool:
    """No session there: no file, or a zero-byte placeholder with no journal beside it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return True
    if size != 0:
        return False
    return not any(path.with_name(path.name + s).exists() for s in _SIDE_FILES)


def _written_beside(path: Path, data: bytes) -> Path:
    """``data`` in a synced temporary file (mode 0600) beside ``path``, to be moved there."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.restore-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o600)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return Path(tmp_name)


def place(path: Path, data: bytes) -> bool:
    """Write ``data`` as ``path`` (mode 0600) atomically, unless a session appeared there.

    The image is written and synced to a temporary file beside ``path``, then
    linked into place: ``link`` fails if ``path`` exists, so nothing is ever
    overwritten (a zero-byte placeholder is replaced by rename). Returns False
    when a session file was found in the way.
    """
    tmp = _written_beside(path, data)
    try:
        if not is_missing(path):
            return False
        if path.exists():  # a zero-byte placeholder
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        _sync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` as ``path`` (mode 0600) atomically, replacing what is there.

    Only for a session that is not open (a handoff restores before the start): the side
    files of the old database go first, so its journal cannot be replayed onto the new one.
    """
    tmp = _written_beside(path, data)
    try:
        for side in _REPLACED_SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                path.with_name(path.name + side).unlink()
        os.replace(tmp, path)
        _sync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
