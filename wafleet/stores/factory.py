"""The message store the settings name: SQLite in the data directory, or Firestore."""

from __future__ import annotations

from wafleet.core.settings import Settings
from wafleet.stores.base import MessageStore


async def open_store(settings: Settings) -> MessageStore:
    """``settings.store``: 'sqlite' (``data_dir/messages.db``) or 'firestore' (the project's DB).

    Firestore is imported only when chosen, so standalone installs need not have it.
    """
    if settings.store == "firestore":
        from wafleet.stores.firestore_messages import FirestoreMessageStore  # noqa: PLC0415

        firestore: MessageStore = await FirestoreMessageStore.from_settings(settings).open()
        return firestore
    from wafleet.stores.sqlite_messages import SqliteMessageStore  # noqa: PLC0415

    sqlite: MessageStore = await SqliteMessageStore(settings.data_dir / "messages.db").open()
    return sqlite
