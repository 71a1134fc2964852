"""The sim's state on disk: linked devices, pending messages, phone inboxes (JSON)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class SimSnapshot:
    devices: list[dict[str, Any]] = field(default_factory=list)
    inbox: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def load_snapshot(path: Path | None) -> SimSnapshot:
    if path is None or not path.exists():
        return SimSnapshot()
    try:
        data = json.loads(path.read_text())
        devices = [
            {
                "id": str(d["id"]),
                "secret": str(d["secret"]),
                "phone": str(d["phone"]),
                "pending": dict(d["pending"]),
            }
            for d in data["devices"]
        ]
        return SimSnapshot(devices=devices, inbox=dict(data["inbox"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"the sim state file {path} is unreadable ({exc}); move it away"
        ) from exc


def save_snapshot(path: Path, snapshot: SimSnapshot) -> None:
    """Write atomically: a crash leaves the old or the new state, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    payload = json.dumps({"devices": snapshot.devices, "inbox": snapshot.inbox})
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
