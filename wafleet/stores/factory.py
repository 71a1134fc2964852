"""The message store the settings name: SQLite in the data directory, or Firestore."""

from __future__ import annotations

from wafleet.core.settings import Settings
from wafleet.stores.base import KeyStore, MessageStore, WebhookStore


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


async def open_key_store(settings: Settings) -> KeyStore:
    """Where scoped API keys live: beside the messages (``data_dir/keys.db`` or Firestore)."""
    if settings.store == "firestore":
        from wafleet.stores.firestore_io import settings_client  # noqa: PLC0415
        from wafleet.stores.firestore_keys import FirestoreKeyStore  # noqa: PLC0415

        client = settings_client(settings)
        return FirestoreKeyStore(client, owns_client=True)
    from wafleet.stores.sqlite_keys import SqliteKeyStore  # noqa: PLC0415

    sqlite: KeyStore = await SqliteKeyStore(settings.data_dir / "keys.db").open()
    return sqlite


async def open_webhook_store(settings: Settings, worker_id: str | None = None) -> WebhookStore:
    """Webhooks beside the event log: in ``data_dir/messages.db`` (the SQLite event log's
    file: its queries join the log) or Firestore. ``worker_id`` names this process's
    delivery claims (the pod name in a cluster)."""
    if settings.store == "firestore":
        from wafleet.stores.firestore_webhooks import FirestoreWebhookStore  # noqa: PLC0415

        firestore: WebhookStore = await FirestoreWebhookStore.from_settings(
            settings, worker_id=worker_id
        ).open()
        return firestore
    from wafleet.stores.sqlite_webhooks import SqliteWebhookStore  # noqa: PLC0415

    sqlite: WebhookStore = await SqliteWebhookStore(
        settings.data_dir / "messages.db", worker_id=worker_id or "standalone"
    ).open()
    return sqlite
