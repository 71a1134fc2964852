"""SqliteMessageStore: threads and messages, the outbox, incidents, on real SQLite files."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wafleet.core.models import Incident, Message, OutboxItem, Thread
from wafleet.stores.base import INTERRUPTED_ERROR, MessageStore
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet.stores.sqlite_registry import SqliteRegistry

T0 = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
A, B = "wa-aaaaaaaaaaaaaaaaaaaa", "wa-bbbbbbbbbbbbbbbbbbbb"
JID1, JID2 = "40700000001@s.whatsapp.net", "40700000002@s.whatsapp.net"


def msg(mid: str, at: datetime, *, account: str = A, jid: str = JID1) -> Message:
    return Message(
        account_id=account,
        client_jid=jid,
        direction="inbound",
        body=f"body {mid}",
        wa_message_id=mid,
        status="delivered",
        ts_client=at,
        ts_server=at + timedelta(milliseconds=250),
    )


def item(key: str, *, account: str = A, created: datetime = T0, due: datetime = T0) -> OutboxItem:
    return OutboxItem(
        id=f"out-{account[-2:]}-{key}",
        account_id=account,
        to_jid=JID1,
        body=f"hello {key}",
        idempotency_key=key,
        next_attempt_at=due,
        created_at=created,
        updated_at=created,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "messages.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SqliteMessageStore]:
    s = await SqliteMessageStore(path).open()
    yield s
    await s.close()


def test_implements_the_protocol(path: Path) -> None:
    s: MessageStore = SqliteMessageStore(path)
    assert s is not None


# --- messages and threads ---------------------------------------------------------------


async def thread_of(store: SqliteMessageStore, account: str = A, jid: str = JID1) -> Thread:
    threads = await store.list_threads(account_id=None, thread_id=f"{account}__{jid}", limit=100)
    assert len(threads) == 1
    return threads[0]


async def test_messages_are_deduplicated_within_and_across_batches(
    store: SqliteMessageStore,
) -> None:
    first = msg("m1", T0)
    assert await store.save_messages([first, msg("m2", T0), first]) == 2
    assert await store.save_messages([msg("m2", T0), msg("m3", T0)]) == 1
    assert await store.save_messages([]) == 0
    thread = await thread_of(store)
    assert [m.wa_message_id for m in thread.messages] == ["m1", "m2", "m3"]
    assert thread.messages[0] == first  # round trip, every field
    # the same message id on another account is another message
    assert await store.save_messages([msg("m1", T0, account=B)]) == 1


async def test_last_message_at_never_moves_backwards(store: SqliteMessageStore) -> None:
    await store.save_messages([msg("m5", T0 + timedelta(minutes=5)), msg("m2", T0)])
    assert (await thread_of(store)).last_message_at == T0 + timedelta(minutes=5)
    await store.save_messages([msg("m1", T0 - timedelta(days=1))])  # a late, older batch
    assert (await thread_of(store)).last_message_at == T0 + timedelta(minutes=5)
    # a redelivered duplicate with a later timestamp is not a new message
    await store.save_messages([msg("m2", T0 + timedelta(hours=1))])
    assert (await thread_of(store)).last_message_at == T0 + timedelta(minutes=5)
    await store.save_messages([msg("m7", T0 + timedelta(minutes=7))])
    thread = await thread_of(store)
    assert thread.last_message_at == T0 + timedelta(minutes=7)
    assert [m.wa_message_id for m in thread.messages] == ["m1", "m2", "m5", "m7"]


async def test_list_threads_order_filters_and_limits(store: SqliteMessageStore) -> None:
    jids = [f"4070000000{n}@s.whatsapp.net" for n in range(4)]
    batch = [
        msg(f"a{n}-{k}", T0 + timedelta(minutes=n, seconds=k), jid=jids[n])
        for n in range(4)
        for k in range(3)
    ]
    batch.append(msg("b0", T0 + timedelta(hours=1), account=B))
    assert await store.save_messages(batch) == 13

    everything = await store.list_threads(account_id=None, thread_id=None, limit=10)
    assert [t.id for t in everything] == [f"{B}__{JID1}"] + [f"{A}__{j}" for j in reversed(jids)]

    limited = await store.list_threads(account_id=A, thread_id=None, limit=2)
    assert [t.client_jid for t in limited] == [jids[3], jids[2]]  # newest threads first
    # each with its 2 newest messages, oldest first
    assert [m.wa_message_id for m in limited[0].messages] == ["a3-1", "a3-2"]
    assert limited[0].last_message_at == T0 + timedelta(minutes=3, seconds=2)
    assert all(t.account_id == A for t in limited)

    one = await store.list_threads(account_id=A, thread_id=f"{A}__{jids[1]}", limit=5)
    assert [t.id for t in one] == [f"{A}__{jids[1]}"]
    assert len(one[0].messages) == 3
    assert await store.list_threads(account_id=B, thread_id=f"{A}__{jids[1]}", limit=5) == []
    assert await store.list_threads(account_id="wa-none", thread_id=None, limit=5) == []
    assert await store.list_threads(account_id=None, thread_id=None, limit=0) == []


# --- outbox -----------------------------------------------------------------------------


async def test_enqueue_is_idempotent_per_account_and_key(store: SqliteMessageStore) -> None:
    first, created = await store.enqueue(item("k1"))
    assert created
    assert first == item("k1")
    assert await store.get_outbox(first.id) == first

    retry = OutboxItem(id="out-other", account_id=A, to_jid=JID2, body="x", idempotency_key="k1")
    again, created = await store.enqueue(retry)
    assert not created
    assert again == first
    assert await store.get_outbox("out-other") is None

    other_account, created = await store.enqueue(item("k1", account=B))
    assert created
    assert other_account.account_id == B
    assert await store.get_outbox("missing") is None


async def test_claim_next_respects_next_attempt_at_and_fifo(store: SqliteMessageStore) -> None:
    await store.enqueue(item("later", created=T0, due=T0 + timedelta(minutes=1)))
    await store.enqueue(item("second", created=T0 + timedelta(seconds=2)))
    await store.enqueue(item("first", created=T0 + timedelta(seconds=1)))
    await store.enqueue(item("b", account=B))

    assert await store.claim_next(A, T0 - timedelta(seconds=1)) is None  # nothing due yet
    claimed = await store.claim_next(A, T0 + timedelta(seconds=30))
    assert claimed is not None
    assert (claimed.idempotency_key, claimed.status) == ("first", "sending")
    assert (await store.get_outbox(claimed.id)).status == "sending"  # type: ignore[union-attr]
    claimed = await store.claim_next(A, T0 + timedelta(seconds=30))
    assert claimed is not None and claimed.idempotency_key == "second"
    assert await store.claim_next(A, T0 + timedelta(seconds=30)) is None
    claimed = await store.claim_next(A, T0 + timedelta(minutes=1))  # due exactly now
    assert claimed is not None and claimed.idempotency_key == "later"
    assert await store.claim_next(A, T0 + timedelta(days=1)) is None
    assert await store.pending_accounts() == [B]


async def test_concurrent_claims_get_each_item_exactly_once(
    store: SqliteMessageStore, path: Path
) -> None:
    for n in range(20):
        await store.enqueue(item(f"k{n:02d}", created=T0 + timedelta(milliseconds=n)))
    async with SqliteMessageStore(path) as second:  # another connection to the same file
        stores = [store, second]
        results = await asyncio.gather(
            *(stores[n % 2].claim_next(A, T0 + timedelta(seconds=1)) for n in range(50))
        )
    claimed = [r.id for r in results if r is not None]
    assert len(claimed) == 20
    assert sorted(claimed) == sorted(item(f"k{n:02d}").id for n in range(20))
    assert await store.pending_accounts() == []


async def test_outbox_transitions(store: SqliteMessageStore) -> None:
    for key in ("ok", "retry", "fail", "amb"):
        await store.enqueue(item(key, created=T0 + timedelta(seconds=len(key))))
    now = T0 + timedelta(seconds=10)
    ok = await store.claim_next(A, now)  # "ok" is the oldest
    assert ok is not None and ok.idempotency_key == "ok"
    await store.mark_sent(ok.id, "3EB0ABC", now + timedelta(seconds=1))
    sent = await store.get_outbox(ok.id)
    assert sent is not None
    assert (sent.status, sent.provider_message_id, sent.error) == ("sent", "3EB0ABC", None)
    assert (sent.attempt_count, sent.updated_at) == (0, now + timedelta(seconds=1))

    amb = await store.claim_next(A, now)
    assert amb is not None and amb.idempotency_key == "amb"
    retry_at = now + timedelta(seconds=30)
    await store.mark_retry(amb.id, "not connected", retry_at)
    retried = await store.get_outbox(amb.id)
    assert retried is not None
    assert (retried.status, retried.attempt_count, retried.error) == ("queued", 1, "not connected")
    assert retried.next_attempt_at == retry_at
    await store.mark_retry(amb.id, "not claimed", retry_at)  # only from 'sending': a no-op
    assert (await store.get_outbox(amb.id)).attempt_count == 1  # type: ignore[union-attr]

    fail = await store.claim_next(A, now)
    assert fail is not None and fail.idempotency_key == "fail"
    await store.mark_final(fail.id, "failed", "invalid recipient")
    failed = await store.get_outbox(fail.id)
    assert failed is not None and (failed.status, failed.error) == ("failed", "invalid recipient")

    again = await store.claim_next(A, retry_at)
    assert again is not None and again.id == amb.id and again.attempt_count == 1
    await store.mark_final(again.id, "ambiguous", "timed out waiting for the server ack")
    assert (await store.get_outbox(amb.id)).status == "ambiguous"  # type: ignore[union-attr]

    with pytest.raises(ValueError, match="final"):
        await store.mark_final(fail.id, "sent", "nope")
    await store.mark_final(ok.id, "failed", "late")  # a sent item stays sent
    assert (await store.get_outbox(ok.id)).status == "sent"  # type: ignore[union-attr]


async def test_recover_interrupted(store: SqliteMessageStore) -> None:
    for account in (A, B):
        for key in ("k1", "k2"):
            await store.enqueue(item(key, account=account))
    a1 = await store.claim_next(A, T0)
    b1 = await store.claim_next(B, T0)
    assert a1 is not None and b1 is not None

    assert await store.recover_interrupted([]) == []
    assert await store.recover_interrupted([A]) == [a1.id]
    recovered = await store.get_outbox(a1.id)
    assert recovered is not None
    assert (recovered.status, recovered.error) == ("ambiguous", INTERRUPTED_ERROR)
    assert (await store.get_outbox(b1.id)).status == "sending"  # type: ignore[union-attr]
    assert await store.recover_interrupted() == [b1.id]
    assert await store.recover_interrupted() == []
    assert await store.pending_accounts() == [A, B]  # queued items are left alone


# --- incidents, files -------------------------------------------------------------------


async def test_incidents_round_trip(store: SqliteMessageStore) -> None:
    first = Incident(A, "logged_out", "high", {"code": 401, "nested": {"list": [1, "x"]}}, T0)
    second = Incident(B, "temp_ban", "medium", {"until": T0 + timedelta(hours=1)}, T0)
    await store.record_incident(first)
    await store.record_incident(second)
    assert await store.list_incidents(account_id=A) == [first]
    newest_first = await store.list_incidents()
    assert newest_first[1] == first
    assert newest_first[0].details == {"until": "2025-03-01T13:00:00.500Z"}  # datetimes as ISO
    assert await store.list_incidents(limit=1) == newest_first[:1]


async def test_files_reopen_and_wal(store: SqliteMessageStore, path: Path) -> None:
    await store.save_messages([msg("m1", T0)])
    await store.enqueue(item("k1"))
    for f in path.parent.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    assert await store.db.run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
    await store.close()

    async with SqliteMessageStore(path) as reopened:
        assert (await thread_of(reopened)).messages == (msg("m1", T0),)
        assert await reopened.get_outbox(item("k1").id) == item("k1")


async def test_registry_and_message_store_can_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "wafleet.db"
    async with SqliteRegistry(path) as registry, SqliteMessageStore(path) as store:
        assert await registry.list() == []
        assert await store.save_messages([msg("m1", T0)]) == 1
    async with SqliteMessageStore(path) as store, SqliteRegistry(path) as registry:
        assert await registry.list() == []
        assert len((await thread_of(store)).messages) == 1
