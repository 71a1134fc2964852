"""Message stores under test: SQLite (a file) and Firestore (the official emulator).

``backend`` is parametrized over both; the Firestore case carries the
``firestore`` marker and is skipped, with the reason, where the emulator is absent.
``backend.open()`` opens another store on the same data (another SQLite
connection, or another Firestore client with its own worker id), as a second
connector pod would; ``backend.open_webhooks()`` a webhook store beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.cloud.firestore import AsyncClient

from support.firestore import FirestoreEmulator, firestore_client, firestore_emulator
from wafleet.stores.firestore_messages import FirestoreMessageStore
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet.stores.sqlite_webhooks import SqliteWebhookStore

__all__ = ["firestore_client", "firestore_emulator"]


@dataclass
class Backend:
    kind: str
    path: Path
    emulator: FirestoreEmulator | None
    opened: list[Any] = field(default_factory=list)

    async def open(self, worker_id: str | None = None) -> Any:
        """Another store on the same data (typed Any: tests also call list_incidents)."""
        store: Any
        if self.emulator is None:
            store = await SqliteMessageStore(self.path).open()
        else:
            client = AsyncClient(project=self.emulator.project)
            worker = worker_id or f"worker-{len(self.opened)}"
            store = FirestoreMessageStore(client, worker_id=worker, owns_client=True)
        self.opened.append(store)
        return store

    async def open_webhooks(self, worker_id: str | None = None) -> Any:
        """A webhook store on the same data; ``worker_id`` names its lane claims (the same
        id twice: one worker restarted)."""
        worker = worker_id or f"worker-{len(self.opened)}"
        hooks: Any
        if self.emulator is None:
            hooks = await SqliteWebhookStore(self.path, worker_id=worker).open()
        else:
            # Imported here: the SQLite cases run wherever the Firestore module does not.
            from wafleet.stores.firestore_webhooks import FirestoreWebhookStore  # noqa: PLC0415

            client = AsyncClient(project=self.emulator.project)
            hooks = await FirestoreWebhookStore(client, worker_id=worker, owns_client=True).open()
        self.opened.append(hooks)
        return hooks

    async def close(self) -> None:
        for store in reversed(self.opened):
            await store.close()


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.firestore)])
def backend_kind(request: pytest.FixtureRequest) -> FirestoreEmulator | None:
    """None for SQLite, else the emulator with an empty database."""
    if request.param == "sqlite":
        return None
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    emulator.clear()
    return emulator


@pytest.fixture
async def backend(backend_kind: FirestoreEmulator | None, tmp_path: Path) -> AsyncIterator[Backend]:
    kind = "sqlite" if backend_kind is None else "firestore"
    b = Backend(kind, tmp_path / "data" / "messages.db", backend_kind)
    yield b
    await b.close()


@pytest.fixture
async def store(backend: Backend) -> Any:
    return await backend.open()
