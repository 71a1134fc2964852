"""The sim's state on disk (JSON): linked devices with their pending messages and
receipts, phone inboxes, the numbers not on WhatsApp, the phones whose LID is known, and
the phones that ask for a passkey to link a device.

Snapshots written before receipts, numbers, LIDs and passkeys existed still load: the
missing parts start empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SAVE_DELAY = 0.05  # seconds: changes close together are written once


@dataclass
class SimSnapshot:
    devices: list[dict[str, Any]] = field(default_factory=list)
    inbox: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unregistered: list[str] = field(default_factory=list)  # numbers not on WhatsApp
    contacts: list[str] = field(default_factory=list)  # phones whose LID resolves
    passkey: list[str] = field(default_factory=list)  # phones that ask for a passkey


def _device(d: dict[str, Any]) -> dict[str, Any]:
    receipts = d.get("receipts", [])
    if not isinstance(receipts, list) or not all(isinstance(r, dict) for r in receipts):
        raise TypeError("a device's receipts must be a list of objects")
    return {
        "id": str(d["id"]),
        "secret": str(d["secret"]),
        "phone": str(d["phone"]),
        "pending": dict(d["pending"]),
        "receipts": list(receipts),
    }


def _phones(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise TypeError(f"'{key}' must be a list of phone numbers")
    return list(value)


def load_snapshot(path: Path | None) -> SimSnapshot:
    if path is None or not path.exists():
        return SimSnapshot()
    try:
        data = json.loads(path.read_text())
        return SimSnapshot(
            devices=[_device(d) for d in data["devices"]],
            inbox=dict(data["inbox"]),
            unregistered=_phones(data, "unregistered"),
            contacts=_phones(data, "contacts"),
            passkey=_phones(data, "passkey"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RuntimeError(
            f"the sim state file {path} is unreadable ({exc}); move it away"
        ) from exc


def save_snapshot(path: Path, snapshot: SimSnapshot) -> None:
    """Write atomically: a crash leaves the old or the new state, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    payload = json.dumps(
        {
            "devices": snapshot.devices,
            "inbox": snapshot.inbox,
            "unregistered": snapshot.unregistered,
            "contacts": snapshot.contacts,
            "passkey": snapshot.passkey,
        }
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class StateSaver:
    """Writes the snapshot ``build`` makes, soon after each change and on close."""

    def __init__(self, path: Path | None, build: Callable[[], SimSnapshot]) -> None:
        self._path = path
        self._build = build
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def changed(self) -> None:
        self._dirty.set()

    def start(self) -> None:
        if self._path is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sim-saver")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.save_now()

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(SAVE_DELAY)
            self._dirty.clear()
            self.save_now()

    def save_now(self) -> None:
        if self._path is not None:
            save_snapshot(self._path, self._build())
