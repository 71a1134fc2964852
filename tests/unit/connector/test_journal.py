"""The inbound journal: durable before the ack, forwarded once, nothing lost in a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from wafleet.core.models import Message
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.journal import InboundJournal

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def inbound(n: int, account_id: str = "wa-a") -> Message:
    return Message(
        account_id=account_id,
        client_jid="40799000001@s.whatsapp.net",
        direction="inbound",
        body=f"text {n}",
        wa_message_id=f"3EB0{n:016X}",
        status="delivered",
        ts_client=T0 + timedelta(seconds=n),
    )


async def stored_ids(store: SqliteMessageStore) -> list[str]:
    threads = await store.list_threads(account_id=None, thread_id=None, limit=500)
    return sorted(m.wa_message_id for t in threads for m in t.messages)


async def test_append_is_forwarded_and_redelivery_dropped(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "messages.db").open()
    journal = InboundJournal(tmp_path / "journal.db", store)
    await journal.start()
    try:
        assert await journal.append(inbound(1)) is True
        assert await journal.append(inbound(1)) in (True, False)  # maybe forwarded already
        await journal.flush()
        assert await journal.append(inbound(2)) is True
        await journal.flush()
        await journal.append(inbound(2))  # a redelivery after forwarding
        await journal.flush()
        assert await stored_ids(store) == [inbound(1).wa_message_id, inbound(2).wa_message_id]
        assert await journal.pending() == 0
        assert (tmp_path / "journal.db").stat().st_mode & 0o777 == 0o600
    finally:
        await journal.close()
        await store.close()


async def test_crash_before_forwarding_loses_nothing(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "messages.db").open()
    journal = InboundJournal(tmp_path / "journal.db", store)
    # A journal whose forwarder never ran: append straight to the file, then "crash".
    await journal._run(journal._open)
    for n in range(50):
        await journal._run(journal._append, inbound(n))
    journal._executor.shutdown(wait=True)  # the process dies here, nothing forwarded
    assert await stored_ids(store) == []

    restarted = InboundJournal(tmp_path / "journal.db", store)
    await restarted.start()
    try:
        await restarted.flush()
        assert await stored_ids(store) == sorted(inbound(n).wa_message_id for n in range(50))
    finally:
        await restarted.close()
        await store.close()


async def test_crash_after_store_write_does_not_duplicate(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "messages.db").open()
    journal = InboundJournal(tmp_path / "journal.db", store)
    await journal._run(journal._open)
    for n in range(10):
        await journal._run(journal._append, inbound(n))
    # Stored, but the crash came before the journal entries were removed.
    await store.save_messages([inbound(n) for n in range(10)])
    journal._executor.shutdown(wait=True)

    restarted = InboundJournal(tmp_path / "journal.db", store)
    await restarted.start()
    try:
        await restarted.flush()
        ids = await stored_ids(store)
        assert ids == sorted(inbound(n).wa_message_id for n in range(10))
        assert await restarted.pending() == 0
    finally:
        await restarted.close()
        await store.close()


async def test_close_forwards_what_is_left(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "messages.db").open()
    journal = InboundJournal(tmp_path / "journal.db", store)
    await journal.start()
    for n in range(600):  # more than one batch
        await journal.append(inbound(n, account_id=f"wa-{n % 3}"))
    await journal.close()
    try:
        threads = await store.list_threads(account_id=None, thread_id=None, limit=500)
        assert sum(len(t.messages) for t in threads) == 600
    finally:
        await store.close()
