"""The key that signs QR page links: from WAFLEET_LINK_KEY, or generated once into the data dir.

Kept like the admin token (``wafleet.core.token``): a file of mode 0600 in the data
directory, read back on every start so links minted before a restart still open. Every
API replica must sign with the same key, so in a cluster it comes from the setting (the
chart puts it in a Secret).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "link-key"
MIN_KEY_CHARS = 32

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkKey:
    value: bytes
    source: str  # "environment" | "generated" | path of the file it was read from

    def __repr__(self) -> str:  # never print the key itself
        return f"LinkKey(source={self.source!r})"


def _read(path: Path) -> bytes | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value.encode() if len(value) >= MIN_KEY_CHARS else None


def load_or_create_link_key(configured: str | None, data_dir: Path) -> LinkKey:
    """The configured key, else the one kept in ``data_dir``, else a new one kept there.

    A new key is written whole to a temporary file, then linked into place, so two
    processes starting at once on the same data directory end up with the same key (the
    one that loses the race reads the winner's).
    """
    if configured:
        return LinkKey(configured.encode(), "environment")
    path = data_dir / KEY_FILE
    kept = _read(path)
    if kept is not None:
        return LinkKey(kept, str(path))
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():  # too short or unreadable as a key: replace it
        path.unlink()
    value = secrets.token_urlsafe(48)
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    try:
        os.link(temporary, path)  # atomic, and only if no other process got there first
    except FileExistsError:
        kept = _read(path)
        if kept is None:
            raise
        return LinkKey(kept, str(path))
    finally:
        temporary.unlink()
    logger.info("link signing key generated", extra={"path": str(path)})
    return LinkKey(value.encode(), "generated")
