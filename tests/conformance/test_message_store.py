"""One MessageStore contract, two stores: every test runs on SQLite and on Firestore (emulator).

The contract is the docstrings of ``wafleet.stores.base.MessageStore`` and the
state rules of the outbox (SQLite is the reference behaviour). Outbox ids are
derived from (account, idempotency key) as the API does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wafleet.core.ids import outbox_id
from wafleet.core.models import Incident, Message, OutboxItem, Thread
from wafleet.stores.base import INTERRUPTED_ERROR, MessageStore

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
        id=outbox_id(account, key),
        account_id=account,
        to_jid=JID1,
        body=f"hello {key}",
        idempotency_key=key,
        next_attempt_at=due,
        created_at=created,
        updated_at=created,
    )


async def thread_of(store: MessageStore, account: str = A, jid: str = JID1) -> Thread:
    threads = await store.list_threads(account_id=None, thread_id=f"{account}__{jid}", limit=100)
    assert len(threads) == 1
    return threads[0]


def test_both_implement_the_protocol(backend: Any, store: Any) -> None:
    typed: MessageStore = store
    assert typed is not None


# --- messages and threads ---------------------------------------------------------------


async def test_messages_are_deduplicated_within_and_across_batches(store: Any) -> None:
    first = msg("m1", T0)
    assert await store.save_messages([first, msg("m2", T0), first]) == 2
    assert await store.save_messages([msg("m2", T0), msg("m3", T0 + timedelta(seconds=1))]) == 1
    assert await store.save_messages([]) == 0
    thread = await thread_of(store)
    assert [m.wa_message_id for m in thread.messages] == ["m1", "m2", "m3"]
    assert thread.messages[0] == first  # round trip, every field
    # within one batch the first of two copies wins
    late_copy = msg("m4", T0 + timedelta(seconds=2))
    early = dataclasses.replace(late_copy, body="the first copy")
    assert await store.save_messages([early, late_copy]) == 1
    assert (await thread_of(store)).messages[-1].body == "the first copy"
    # the same message id on another account is another message
    assert await store.save_messages([msg("m1", T0, account=B)]) == 1


async def test_last_message_at_never_moves_backwards(store: Any) -> None:
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


async def test_list_threads_order_filters_and_limits(store: Any) -> None:
    jids = [f"4070000000{n}@s.whatsapp.net" for n in range(4)]
    batch = [
        msg(f"a{n}-{k}", T0 + timedelta(minutes=n, seconds=k), jid=jids[n])
        for n in range(4)
        for k in range(3)
    ]
    batch.append(msg("b0", T0 + timedelta(hours=1), account=B))
    random.Random(4).shuffle(batch)  # arrival order is not time order
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
    assert await store.list_threads(account_id=None, thread_id=f"{A}__{jids[1]}", limit=1)
    assert await store.list_threads(account_id=B, thread_id=f"{A}__{jids[1]}", limit=5) == []
    assert await store.list_threads(account_id=None, thread_id=f"{A}__nobody", limit=5) == []
    assert await store.list_threads(account_id="wa-none", thread_id=None, limit=5) == []
    assert await store.list_threads(account_id=None, thread_id=None, limit=0) == []


async def test_threads_with_equal_times_are_ordered_by_id(store: Any) -> None:
    await store.save_messages([msg("x", T0, jid=JID2), msg("y", T0, jid=JID1)])
    threads = await store.list_threads(account_id=A, thread_id=None, limit=5)
    assert [t.client_jid for t in threads] == [JID1, JID2]


async def test_concurrent_writers_store_each_message_once(backend: Any, store: Any) -> None:
    other = await backend.open()
    ids = [f"dup-{n:03d}" for n in range(60)]
    batches = [
        [msg(mid, T0 + timedelta(seconds=n)) for n, mid in enumerate(ids) if n % 3 != r]
        for r in range(3)
    ]
    stores = [store, other, store, other, other, store]
    counts = await asyncio.gather(*(s.save_messages(batches[n % 3]) for n, s in enumerate(stores)))
    assert sum(counts) == len(ids)  # each message counted new exactly once
    thread = await thread_of(store)
    assert [m.wa_message_id for m in thread.messages] == ids
    assert thread.last_message_at == T0 + timedelta(seconds=len(ids) - 1)


async def test_thread_times_under_reordered_concurrent_batches(backend: Any, store: Any) -> None:
    other = await backend.open()
    jids = [JID1, JID2, "40700000003@s.whatsapp.net"]
    messages = [msg(f"r{n:03d}", T0 + timedelta(seconds=n), jid=jids[n % 3]) for n in range(90)]
    random.Random(7).shuffle(messages)
    batches = [messages[i : i + 9] for i in range(0, len(messages), 9)]
    stores = [store, other]
    counts = await asyncio.gather(*(stores[n % 2].save_messages(b) for n, b in enumerate(batches)))
    assert sum(counts) == 90
    for k, jid in enumerate(jids):
        newest = max(n for n in range(90) if n % 3 == k)
        thread = await thread_of(store, jid=jid)
        assert thread.last_message_at == T0 + timedelta(seconds=newest)
        assert len(thread.messages) == 30


# --- outbox -----------------------------------------------------------------------------


async def test_enqueue_is_idempotent_per_account_and_key(store: Any) -> None:
    first, created = await store.enqueue(item("k1"))
    assert created
    assert first == item("k1")
    assert await store.get_outbox(first.id) == first

    repeated = OutboxItem(
        id=outbox_id(A, "k1"), account_id=A, to_jid=JID2, body="changed", idempotency_key="k1"
    )
    again, created = await store.enqueue(repeated)
    assert not created
    assert again == first  # the first request's item, untouched

    other_account, created = await store.enqueue(item("k1", account=B))
    assert created
    assert other_account.account_id == B
    assert other_account.id != first.id
    assert await store.get_outbox("missing") is None


async def test_concurrent_enqueues_of_one_key_create_one_item(store: Any) -> None:
    results = await asyncio.gather(*(store.enqueue(item("same")) for _ in range(8)))
    assert sum(created for _, created in results) == 1
    assert {i for i, _ in results} == {item("same")}


async def test_claim_next_respects_next_attempt_at_and_fifo(store: Any) -> None:
    await store.enqueue(item("later", created=T0, due=T0 + timedelta(minutes=1)))
    await store.enqueue(item("second", created=T0 + timedelta(seconds=2)))
    await store.enqueue(item("first", created=T0 + timedelta(seconds=1)))
    await store.enqueue(item("b", account=B))

    assert await store.claim_next(A, T0 - timedelta(seconds=1)) is None  # nothing due yet
    claimed = await store.claim_next(A, T0 + timedelta(seconds=30))
    assert claimed is not None
    assert (claimed.idempotency_key, claimed.status) == ("first", "sending")
    assert claimed.updated_at == T0 + timedelta(seconds=30)
    assert await store.get_outbox(claimed.id) == claimed
    claimed = await store.claim_next(A, T0 + timedelta(seconds=30))
    assert claimed is not None and claimed.idempotency_key == "second"
    assert await store.claim_next(A, T0 + timedelta(seconds=30)) is None
    claimed = await store.claim_next(A, T0 + timedelta(minutes=1))  # due exactly now
    assert claimed is not None and claimed.idempotency_key == "later"
    assert await store.claim_next(A, T0 + timedelta(days=1)) is None
    assert await store.pending_accounts() == [B]


async def test_outbox_depths_count_what_waits(store: Any) -> None:
    for n in range(3):
        await store.enqueue(item(f"a{n}", created=T0 + timedelta(seconds=n)))
    await store.enqueue(item("b-sent", account=B))
    await store.enqueue(item("b-waits", account=B, created=T0 + timedelta(seconds=1)))
    sending = await store.claim_next(A, T0 + timedelta(seconds=5))  # being sent: it waits
    assert sending is not None
    sent = await store.claim_next(B, T0 + timedelta(seconds=5))
    assert sent is not None and sent.idempotency_key == "b-sent"
    await store.mark_sent(sent.id, "wa-1", T0 + timedelta(seconds=6))
    depths = await store.outbox_depths([A, B, "wa-nobody"])
    assert depths == {A: 3, B: 1, "wa-nobody": 0}
    assert await store.outbox_depths([]) == {}


async def test_two_claimers_send_each_item_exactly_once(backend: Any, store: Any) -> None:
    for n in range(20):
        await store.enqueue(item(f"k{n:02d}", created=T0 + timedelta(milliseconds=n)))
    pods = [store, await backend.open("pod-b")]
    sent: list[str] = []

    async def sender(pod: Any) -> None:
        while (claimed := await pod.claim_next(A, T0 + timedelta(seconds=1))) is not None:
            sent.append(claimed.id)
            await pod.mark_sent(claimed.id, f"wa-{claimed.id}", T0 + timedelta(seconds=2))

    await asyncio.wait_for(asyncio.gather(*(sender(pods[n % 2]) for n in range(6))), 60)
    assert sorted(sent) == sorted(item(f"k{n:02d}").id for n in range(20))  # once each
    for item_id in sent:
        done = await store.get_outbox(item_id)
        assert done is not None and done.status == "sent"
    assert await store.pending_accounts() == []


async def test_outbox_transitions(store: Any) -> None:
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
    await store.mark_sent(ok.id, "3EB0OTHER", now + timedelta(seconds=5))  # not over 'sent'
    assert (await store.get_outbox(ok.id)).provider_message_id == "3EB0ABC"

    amb = await store.claim_next(A, now)
    assert amb is not None and amb.idempotency_key == "amb"
    retry_at = now + timedelta(seconds=30)
    await store.mark_retry(amb.id, "not connected", retry_at)
    retried = await store.get_outbox(amb.id)
    assert retried is not None
    assert (retried.status, retried.attempt_count, retried.error) == ("queued", 1, "not connected")
    assert retried.next_attempt_at == retry_at
    await store.mark_retry(amb.id, "not claimed", retry_at)  # only from 'sending': a no-op
    assert (await store.get_outbox(amb.id)).attempt_count == 1
    assert (await store.get_outbox(amb.id)).error == "not connected"

    fail = await store.claim_next(A, now)
    assert fail is not None and fail.idempotency_key == "fail"
    await store.mark_final(fail.id, "failed", "invalid recipient")
    failed = await store.get_outbox(fail.id)
    assert failed is not None and (failed.status, failed.error) == ("failed", "invalid recipient")
    await store.mark_retry(fail.id, "too late", retry_at)  # a final item is not re-queued
    assert (await store.get_outbox(fail.id)).status == "failed"

    rest = await store.claim_next(A, now)  # "amb" waits for its next attempt
    assert rest is not None and rest.idempotency_key == "retry"
    assert await store.claim_next(A, now) is None
    again = await store.claim_next(A, retry_at)
    assert again is not None and again.id == amb.id and again.attempt_count == 1
    await store.mark_final(again.id, "ambiguous", "timed out waiting for the server ack")
    assert (await store.get_outbox(amb.id)).status == "ambiguous"
    await store.mark_sent(amb.id, "3EB0LATE", retry_at)  # WhatsApp's word beats 'ambiguous'
    late = await store.get_outbox(amb.id)
    assert (late.status, late.provider_message_id, late.error) == ("sent", "3EB0LATE", None)

    with pytest.raises(ValueError, match="final"):
        await store.mark_final(fail.id, "sent", "nope")
    await store.mark_final(ok.id, "failed", "late")  # a sent item stays sent
    assert (await store.get_outbox(ok.id)).status == "sent"
    # unknown items: logged, nothing raised, nothing created
    await store.mark_sent("missing", "x", now)
    await store.mark_retry("missing", "x", now)
    await store.mark_final("missing", "failed", "x")
    assert await store.get_outbox("missing") is None


async def test_recover_interrupted(store: Any) -> None:
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
    assert (await store.get_outbox(b1.id)).status == "sending"
    assert await store.recover_interrupted() == [b1.id]
    assert await store.recover_interrupted() == []
    assert await store.pending_accounts() == [A, B]  # queued items are left alone
    # an interrupted item never goes back to the queue by itself
    later = await store.claim_next(A, T0 + timedelta(days=1))
    assert later is not None and later.id != a1.id


# --- incidents --------------------------------------------------------------------------


async def test_incidents_round_trip(store: Any) -> None:
    first = Incident(A, "logged_out", "high", {"code": 401, "nested": {"list": [1, "x"]}}, T0)
    second = Incident(B, "temp_ban", "medium", {"until": T0 + timedelta(hours=1)}, T0)
    await store.record_incident(first)
    await store.record_incident(second)
    assert await store.list_incidents(account_id=A) == [first]
    newest_first = await store.list_incidents()
    assert newest_first[1] == first
    assert newest_first[0].details == {"until": "2025-03-01T13:00:00.500Z"}  # datetimes as ISO
    assert await store.list_incidents(limit=1) == newest_first[:1]
    assert await store.list_incidents(account_id="wa-none") == []
