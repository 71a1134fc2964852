"""The admin bearer token: from WAFLEET_ADMIN_TOKEN, or generated once into the data dir."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

TOKEN_FILE = "admin-token"  # noqa: S105 (a file name, not a secret)


@dataclass(frozen=True)
class AdminToken:
    value: str
    source: str  # "environment" | "generated" | path of the file it was read from


def load_or_create_token(configured: str | None, data_dir: Path) -> AdminToken:
    if configured:
        return AdminToken(configured, "environment")
    path = data_dir / TOKEN_FILE
    if path.exists():
        value = path.read_text().strip()
        if len(value) >= 16:
            return AdminToken(value, str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return AdminToken(value, "generated")
