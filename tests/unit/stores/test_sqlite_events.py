"""The SQLite event log and webhook store: what only SQLite does (the shared contract is in
tests/conformance): pruning, the schema migration, atomicity, listener errors, recovery and
early receipts, and lanes whose events were pruned before delivery."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wafleet.core.ids import outbox_id
from wafleet.core.models import AccountStatus, Message, OutboxItem
from wafleet.core.phases import Phase
from wafleet.events.model import Event, phase_event, status_event_id
from wafleet.events.webhooks import LaneKey, Webhook
from wafleet.stores.base import INTERRUPTED_ERROR, EventQuery, UnknownEvent
from wafleet.stores.sqlite_db import Database, ts
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet.stores.sqlite_webhooks import SqliteWebhookStore

T0 = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
A, B = "wa-aaaaaaaaaaaaaaaaaaaa", "wa-bbbbbbbbbbbbbbbbbbbb"
JID1 = "40700000001@s.whatsapp.net"


def msg(mid: str, *, inbound: bool = True) -> Message:
    return Message(
        account_id=A,
        client_jid=JID1,
        direction="inbound" if inbound else "outbound",
        body=f"body {mid}",
        wa_message_id=mid,
        status="delivered" if inbound else "sent",
        ts_client=T0,
        ts_server=T0,
    )


def item(key: str) -> OutboxItem:
    return OutboxItem(
        id=outbox_id(A, key),
        account_id=A,
        to_jid=JID1,
        body=f"hello {key}",
        idempotency_key=key,
        next_attempt_at=T0,
        created_at=T0,
        updated_at=T0,
    )


def phase(at: datetime, account: str = A) -> Event:
    return phase_event(account, AccountStatus(phase=Phase.CONNECTED, reason="test"), at=at)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "messages.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteMessageStore]:
    s = await SqliteMessageStore(path).open()
    yield s
    await s.close()


@pytest.fixture
async def hooks(path: Path) -> AsyncIterator[SqliteWebhookStore]:
    s = await SqliteWebhookStore(path, worker_id="w1").open()
    yield s
    await s.close()


def versions(path: Path) -> dict[str, int]:
    """The schema versions in the file, read without opening (and migrating) a store."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT component, version FROM schema_version").fetchall()
    finally:
        conn.close()
    return {str(r[0]): int(r[1]) for r in rows}


# --- pruning ----------------------------------------------------------------------------


async def test_prune_drops_old_events_and_keeps_the_seq_counters(
    store: SqliteMessageStore,
) -> None:
    old = await store.append_events([phase(T0), phase(T0 + timedelta(hours=1))])
    kept = await store.append_events([phase(T0 + timedelta(hours=2))])
    await store.append_events([phase(T0, account=B)])
    assert await store.prune_events(T0 + timedelta(minutes=90)) == 3
    assert await store.events_after(A, 0, 10) == kept
    assert await store.get_event(old[0].id) is None
    with pytest.raises(UnknownEvent):
        await store.list_events(EventQuery(after=old[1].id))
    (after_prune,) = await store.append_events([phase(T0 + timedelta(hours=3))])
    assert after_prune.seq == 4  # the counter went on from 3
    (b_next,) = await store.append_events([phase(T0, account=B)])
    assert b_next.seq == 2  # B's only event was pruned; its counter stayed at 1
    assert await store.prune_events(T0) == 0
    assert await store.list_events(EventQuery(after=kept[0].id)) == [after_prune, b_next]


async def test_a_lane_whose_events_were_pruned_skips_them(
    store: SqliteMessageStore, hooks: SqliteWebhookStore, caplog: pytest.LogCaptureFixture
) -> None:
    hook = Webhook(id="wh_1", url="https://h.example.com", secret="whsec_x", created_at=T0)
    await hooks.create_webhook(hook)
    await store.append_events([phase(T0 + timedelta(hours=n)) for n in range(3)])
    key = LaneKey(hook.id, A)
    lane = await hooks.claim_lane(key, hook, NOW, LEASE)
    assert lane is not None and lane.cursor == 0
    await hooks.release_lane(lane)
    assert await store.prune_events(T0 + timedelta(days=1)) == 3  # never delivered
    assert await hooks.due_lanes([hook], NOW, 10) == [key]  # the head says so
    with caplog.at_level(logging.WARNING):
        assert await hooks.claim_lane(key, hook, NOW, LEASE) is None
    assert "pruned before delivery" in caplog.text
    assert await hooks.due_lanes([hook], NOW, 10) == []  # moved to the head, not due again
    (new,) = await store.append_events([phase(T0 + timedelta(days=2))])
    lane = await hooks.claim_lane(key, hook, NOW, LEASE)
    assert lane is not None and lane.cursor == 3 and new.seq == 4


async def test_a_new_lane_after_pruning_starts_at_the_oldest_retained_event(
    store: SqliteMessageStore, hooks: SqliteWebhookStore
) -> None:
    await store.append_events([phase(T0 + timedelta(hours=n)) for n in range(4)])
    await store.prune_events(T0 + timedelta(minutes=90))  # seqs 1, 2 gone
    # created before every retained event (after the pruned ones): it gets 3 and 4
    hook = Webhook(
        id="wh_1",
        url="https://h.example.com",
        secret="whsec_x",
        created_at=T0 + timedelta(minutes=100),
    )
    await hooks.create_webhook(hook)
    lane = await hooks.claim_lane(LaneKey(hook.id, A), hook, NOW, LEASE)
    assert lane is not None and lane.cursor == 2


async def test_replay_after_a_pruned_event_raises(
    store: SqliteMessageStore, hooks: SqliteWebhookStore
) -> None:
    hook = Webhook(id="wh_1", url="https://h.example.com", secret="whsec_x", created_at=T0)
    await hooks.create_webhook(hook)
    (gone,) = await store.append_events([phase(T0)])
    await store.prune_events(T0 + timedelta(seconds=1))
    with pytest.raises(UnknownEvent):
        await hooks.replay(hook.id, gone)
    assert await hooks.replay("wh_missing", gone) == 0


# --- schema -----------------------------------------------------------------------------


async def test_a_database_of_the_previous_schema_is_migrated_with_its_data(path: Path) -> None:
    first = SqliteMessageStore.MIGRATIONS[:1]
    old = await Database.open(path, SqliteMessageStore.COMPONENT, first)
    sent_at = ts(T0)

    def fill(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO threads VALUES (?, ?, ?, ?)", (f"{A}__{JID1}", A, JID1, sent_at))
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, 'outbound', 'hi', 'sent', ?, ?, ?)",
            (A, "3EB0OLD", f"{A}__{JID1}", JID1, sent_at, sent_at, sent_at),
        )
        conn.execute(
            "INSERT INTO outbox VALUES (?, ?, ?, ?, 'hi', 'sent', 0, ?, 'k-old', '3EB0OLD',"
            " NULL, ?, ?)",
            (outbox_id(A, "k-old"), A, JID1, f"{A}__{JID1}", sent_at, sent_at, sent_at),
        )

    await old.run(fill)
    await old.close()
    assert versions(path) == {"messages": 1}

    async with SqliteMessageStore(path) as store:
        (thread,) = await store.list_threads(account_id=A, thread_id=None, limit=10)
        assert [(m.wa_message_id, m.status) for m in thread.messages] == [("3EB0OLD", "sent")]
        stored = await store.get_outbox(outbox_id(A, "k-old"))
        assert stored is not None and stored.provider_message_id == "3EB0OLD"
        # the old sent message takes receipts, logged from seq 1 on
        receipt = await store.apply_receipt(A, "3EB0OLD", "read", NOW)
        assert receipt is not None and receipt.seq == 1
        assert receipt.id == status_event_id(A, outbox_id(A, "k-old"), "read")
        assert await store.save_messages([msg("m-new")]) == 1
        assert [e.seq for e in await store.events_after(A, 0, 10)] == [1, 2]
    assert versions(path) == {"messages": 2}


async def test_the_webhook_store_may_open_the_file_first(path: Path) -> None:
    async with SqliteWebhookStore(path) as hooks:
        assert hooks.worker_id == "standalone"
        hook = Webhook(id="wh_1", url="https://h.example.com", secret="whsec_x", created_at=T0)
        await hooks.create_webhook(hook)
        assert await hooks.due_lanes([hook], NOW, 10) == []  # the event tables are there
    assert versions(path) == {"messages": 2, "webhooks": 1}
    async with SqliteMessageStore(path) as store:
        await store.append_events([phase(T0)])
    async with SqliteWebhookStore(path) as hooks:
        assert await hooks.due_lanes([hook], NOW, 10) == [LaneKey("wh_1", A)]


# --- atomicity, listeners ---------------------------------------------------------------


async def test_a_failed_event_write_stores_nothing(store: SqliteMessageStore) -> None:
    await store.db.run(
        lambda c: c.execute(
            "CREATE TEMP TRIGGER no_events BEFORE INSERT ON events"
            " BEGIN SELECT RAISE(ABORT, 'no events today'); END"
        )
    )
    with pytest.raises(sqlite3.IntegrityError, match="no events today"):
        await store.save_messages([msg("m1")])
    with pytest.raises(sqlite3.IntegrityError):
        await store.enqueue(item("k1"))
    assert await store.list_threads(account_id=None, thread_id=None, limit=10) == []
    assert await store.get_outbox(outbox_id(A, "k1")) is None
    await store.db.run(lambda c: c.execute("DROP TRIGGER no_events"))
    assert await store.save_messages([msg("m1")]) == 1
    assert [e.seq for e in await store.events_after(A, 0, 10)] == [1]  # no seq was lost


async def test_a_failing_listener_is_logged_and_the_others_called(
    store: SqliteMessageStore, caplog: pytest.LogCaptureFixture
) -> None:
    threads: list[int] = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    store.on_logged(broken)
    store.on_logged(lambda: threads.append(threading.get_ident()))
    with caplog.at_level(logging.ERROR):
        assert await store.save_messages([msg("m1")]) == 1
    assert threads == [threading.get_ident()]  # in the event loop's thread
    assert "listener failed" in caplog.text
    assert "+40700000001" not in caplog.text and "40700000001" not in caplog.text


# --- outbox specifics -------------------------------------------------------------------


async def test_recovered_sends_log_ambiguous(store: SqliteMessageStore) -> None:
    await store.enqueue(item("k1"))
    await store.enqueue(item("k2"))
    claimed = await store.claim_next(A, T0)
    assert claimed is not None
    assert await store.recover_interrupted() == [claimed.id]
    events = await store.events_after(A, 0, 10)
    assert [(e.seq, e.data["status"]) for e in events] == [
        (1, "queued"),
        (2, "queued"),
        (3, "ambiguous"),
    ]
    assert events[2].id == status_event_id(A, claimed.id, "ambiguous")
    assert events[2].data["error"] == INTERRUPTED_ERROR


async def test_a_receipt_before_the_outbound_copy_is_stored(store: SqliteMessageStore) -> None:
    """WhatsApp may answer before the connector stores its copy of the sent message: the
    log remembers the receipt, and the copy is stored with it."""
    await store.enqueue(item("k1"))
    claimed = await store.claim_next(A, T0)
    assert claimed is not None
    await store.mark_sent(claimed.id, "3EB0FAST", T0)
    delivered = await store.apply_receipt(A, "3EB0FAST", "delivered", T0)
    assert delivered is not None
    assert await store.apply_receipt(A, "3EB0FAST", "delivered", T0) is None
    assert await store.save_messages([msg("3EB0FAST", inbound=False)]) == 1
    (thread,) = await store.list_threads(account_id=A, thread_id=None, limit=10)
    assert [m.status for m in thread.messages] == ["delivered"]
    assert await store.apply_receipt(A, "3EB0FAST", "read", T0) is not None
    (thread,) = await store.list_threads(account_id=A, thread_id=None, limit=10)
    assert [m.status for m in thread.messages] == ["read"]


async def test_a_receipt_of_an_unknown_kind_is_refused(store: SqliteMessageStore) -> None:
    with pytest.raises(ValueError, match="receipt"):
        await store.apply_receipt(A, "3EB0", "failed", T0)
    assert await store.apply_receipt(A, "3EB0", "sent", T0) is None  # nothing to move


async def test_empty_filters_match_nothing(store: SqliteMessageStore) -> None:
    await store.append_events([phase(T0)])
    assert await store.list_events(EventQuery(account_ids=frozenset())) == []
    assert await store.list_events(EventQuery(types=frozenset())) == []
    assert await store.list_events(EventQuery(limit=0)) == []
    assert await store.events_after(A, 0, 0) == []
