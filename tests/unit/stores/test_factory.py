"""open_store: SQLite in the data directory unless the settings say Firestore."""

from __future__ import annotations

from pathlib import Path

from wafleet.core.settings import Settings
from wafleet.stores.factory import open_store
from wafleet.stores.sqlite_messages import SqliteMessageStore


async def test_sqlite_is_the_default_and_lives_in_the_data_directory(tmp_path: Path) -> None:
    store = await open_store(Settings(data_dir=tmp_path / "data"))
    try:
        assert isinstance(store, SqliteMessageStore)
        assert store.db.path == tmp_path / "data" / "messages.db"
        assert store.db.path.exists()
    finally:
        await store.close()
