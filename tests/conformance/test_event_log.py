"""One EventLog contract, two stores: every test runs on SQLite and on Firestore (emulator).

The contract is the docstrings of ``wafleet.stores.base.EventLog`` (which the message store
extends) and of ``wafleet.events.model``: which writes log which event, per-account seq
1, 2, 3 ... assigned in the write that logs, stable ids that drop repeats, receipts that only
move forward, and the reads (pages, filters, ``events_after``). Expected event data comes
from the builders in ``wafleet.events.model``, which both stores are meant to use.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wafleet.core.ids import outbox_id, thread_id
from wafleet.core.models import AccountStatus, Incident, Message, OutboxItem
from wafleet.core.phases import Phase
from wafleet.events.model import (
    Event,
    inbound_event,
    inbound_event_id,
    incident_event,
    phase_event,
    receipt_event,
    status_event,
    status_event_id,
)
from wafleet.stores.base import EventLog, EventQuery, UnknownEvent

T0 = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
A, B = "wa-aaaaaaaaaaaaaaaaaaaa", "wa-bbbbbbbbbbbbbbbbbbbb"
JID1, JID2 = "40700000001@s.whatsapp.net", "40700000002@s.whatsapp.net"
UNKNOWN_ID = "evt_" + "z" * 26


def msg(
    mid: str, at: datetime = T0, *, account: str = A, jid: str = JID1, inbound: bool = True
) -> Message:
    return Message(
        account_id=account,
        client_jid=jid,
        direction="inbound" if inbound else "outbound",
        body=f"body {mid}",
        wa_message_id=mid,
        status="delivered" if inbound else "sent",
        ts_client=at,
        ts_server=at + timedelta(milliseconds=250),
    )


def item(key: str, *, account: str = A, created: datetime = T0) -> OutboxItem:
    return OutboxItem(
        id=outbox_id(account, key),
        account_id=account,
        to_jid=JID1,
        body=f"hello {key}",
        idempotency_key=key,
        next_attempt_at=created,
        created_at=created,
        updated_at=created,
    )


def phase(account: str = A, phase: Phase = Phase.CONNECTED, reason: str = "test") -> Event:
    return phase_event(account, AccountStatus(phase=phase, reason=reason))


async def everything(store: Any, account: str = A) -> list[Event]:
    events: list[Event] = await store.events_after(account, 0, 1000)
    return events


async def sent_item(store: Any, key: str, wa_id: str, at: datetime = T0) -> OutboxItem:
    """An item enqueued, claimed, sent as ``wa_id`` and its outbound copy stored, as the
    connector's outbox does it."""
    await store.enqueue(item(key))
    claimed = await store.claim_next(A, T0 + timedelta(days=1))
    assert claimed is not None and claimed.id == outbox_id(A, key)
    await store.mark_sent(claimed.id, wa_id, at)
    await store.save_messages([msg(wa_id, at, inbound=False)])
    sent = await store.get_outbox(claimed.id)
    assert sent is not None and sent.status == "sent"
    return sent


async def stored_status(store: Any, wa_id: str) -> str:
    threads = await store.list_threads(account_id=A, thread_id=thread_id(A, JID1), limit=100)
    (found,) = [m for t in threads for m in t.messages if m.wa_message_id == wa_id]
    return str(found.status)


def test_both_implement_the_event_log(backend: Any, store: Any) -> None:
    typed: EventLog = store
    assert typed is not None


# --- what each write logs ---------------------------------------------------------------


async def test_every_writer_takes_the_accounts_next_seq(store: Any) -> None:
    inbound = msg("m1")
    assert await store.save_messages([inbound]) == 1
    await store.enqueue(item("k1"))
    claimed = await store.claim_next(A, T0)
    assert claimed is not None
    sent_at = T0 + timedelta(seconds=3)
    await store.mark_sent(claimed.id, "3EB0K1", sent_at)
    await store.save_messages([msg("3EB0K1", sent_at, inbound=False)])  # logs nothing
    await store.enqueue(item("k2", created=T0 + timedelta(seconds=1)))
    await store.mark_final(outbox_id(A, "k2"), "failed", "invalid recipient")
    incident = Incident(A, "logged_out", "high", {"code": 401}, T0 + timedelta(seconds=4))
    await store.record_incident(incident)
    receipt_at = T0 + timedelta(seconds=5)
    receipt = await store.apply_receipt(A, "3EB0K1", "delivered", receipt_at)
    assert receipt is not None
    (appended,) = await store.append_events([phase(A)])
    await store.save_messages([msg("m1", account=B)])  # another account: its own seq

    events = await everything(store)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7, 8]
    k1, k2 = item("k1"), item("k2", created=T0 + timedelta(seconds=1))
    sent = dataclasses.replace(k1, provider_message_id="3EB0K1")
    expected = [
        inbound_event(inbound),
        status_event(k1, "queued"),
        status_event(sent, "sent"),
        status_event(k2, "queued"),
        status_event(k2, "failed", error="invalid recipient"),
        incident_event(incident),
        receipt_event(A, "3EB0K1", JID1, "delivered", outbox_id=k1.id),
        appended,
    ]
    assert [(e.type, e.account_id, dict(e.data)) for e in events] == [
        (x.type, x.account_id, dict(x.data)) for x in expected
    ]
    stable = [e.id for e in events[:5]] + [events[6].id]
    assert stable == [
        inbound_event_id(A, "m1"),
        status_event_id(A, k1.id, "queued"),
        status_event_id(A, k1.id, "sent"),
        status_event_id(A, k2.id, "queued"),
        status_event_id(A, k2.id, "failed"),
        status_event_id(A, k1.id, "delivered"),
    ]
    assert events[2].at == sent_at  # mark_sent's time
    assert events[6] == receipt and receipt.at == receipt_at and receipt.seq == 7
    assert events[7] == appended and appended.seq == 8
    (other,) = await everything(store, B)
    assert (other.seq, other.id) == (1, inbound_event_id(B, "m1"))
    assert other.id != events[0].id


async def test_a_duplicate_inbound_message_logs_nothing(store: Any) -> None:
    first = msg("m1")
    assert await store.save_messages([first, msg("m2"), first]) == 2
    assert await store.save_messages([msg("m1", T0 + timedelta(hours=1))]) == 0  # redelivered
    events = await everything(store)
    assert [(e.seq, e.id) for e in events] == [
        (1, inbound_event_id(A, "m1")),
        (2, inbound_event_id(A, "m2")),
    ]
    assert events[0].data["tsClient"] == "2025-03-01T12:00:00.500Z"  # the first copy's
    assert await store.get_event(inbound_event_id(A, "m1")) == events[0]


async def test_outbound_messages_stored_directly_log_nothing(store: Any) -> None:
    assert await store.save_messages([msg("from-phone", inbound=False)]) == 1
    assert await everything(store) == []
    assert await store.latest_event() is None


async def test_writes_that_change_no_status_log_nothing(store: Any) -> None:
    await store.enqueue(item("k1"))
    again, created = await store.enqueue(item("k1"))  # the same request again
    assert not created and again.id == outbox_id(A, "k1")
    claimed = await store.claim_next(A, T0)  # 'sending' is internal
    assert claimed is not None
    await store.mark_retry(claimed.id, "not connected", T0 + timedelta(seconds=5))
    assert [e.data["status"] for e in await everything(store)] == ["queued"]

    claimed = await store.claim_next(A, T0 + timedelta(seconds=5))
    assert claimed is not None
    await store.mark_final(claimed.id, "ambiguous", "timed out")
    await store.mark_final(claimed.id, "ambiguous", "timed out again")  # same status
    await store.mark_sent(claimed.id, "3EB0X", T0)  # WhatsApp's word: a change
    await store.mark_sent(claimed.id, "3EB0Y", T0)  # not over 'sent'
    await store.mark_final(claimed.id, "failed", "late")  # a sent item stays sent
    await store.mark_final("missing", "failed", "unknown item")
    statuses = [e.data["status"] for e in await everything(store)]
    assert statuses == ["queued", "ambiguous", "sent"]
    assert [e.seq for e in await everything(store)] == [1, 2, 3]


async def test_append_events_returns_them_as_logged_and_drops_known_ids(store: Any) -> None:
    first, second = phase(A, Phase.QR_READY), phase(A, Phase.CONNECTED)
    logged = await store.append_events([first, second, first])
    assert [(e.id, e.seq) for e in logged] == [(first.id, 1), (second.id, 2)]
    assert [(e.type, dict(e.data)) for e in logged] == [
        ("account.phase", dict(first.data)),
        ("account.phase", dict(second.data)),
    ]
    for event in logged:
        assert await store.get_event(event.id) == event  # as logged: seq and time
    assert await store.append_events([second]) == []
    assert await store.append_events([]) == []
    assert [e.id for e in await everything(store)] == [first.id, second.id]
    assert (await store.append_events([phase(B)]))[0].seq == 1


async def test_the_message_and_its_event_are_one_write(backend: Any, store: Any) -> None:
    """Two writers race on the same messages and the same outbox key: each message is new
    once and logged once, the item is queued once."""
    other = await backend.open()
    messages = [msg(f"m{n:02d}", T0 + timedelta(seconds=n)) for n in range(12)]
    counts = await asyncio.gather(
        *(s.save_messages(messages[k::2] + messages) for k, s in enumerate([store, other] * 2))
    )
    assert sum(counts) == 12
    enqueued = await asyncio.gather(*(s.enqueue(item("same")) for s in [store, other] * 3))
    assert sum(created for _, created in enqueued) == 1
    events = await everything(store)
    inbound_ids = sorted(e.id for e in events if e.type == "message.inbound")
    assert inbound_ids == sorted(inbound_event_id(A, m.wa_message_id) for m in messages)
    assert [e.id for e in events if e.type == "message.status"] == [
        status_event_id(A, outbox_id(A, "same"), "queued")
    ]
    assert [e.seq for e in events] == list(range(1, 14))


# --- receipts ---------------------------------------------------------------------------


async def test_receipts_move_the_stored_status_forward_only(store: Any) -> None:
    sent = await sent_item(store, "k1", "3EB0R1")
    assert await stored_status(store, "3EB0R1") == "sent"

    at = T0 + timedelta(minutes=1)
    delivered = await store.apply_receipt(A, "3EB0R1", "delivered", at)
    assert delivered is not None
    assert delivered.id == status_event_id(A, sent.id, "delivered")
    assert (delivered.type, delivered.seq, delivered.at) == ("message.status", 3, at)
    assert dict(delivered.data) == {
        "outboxId": sent.id,
        "waMessageId": "3EB0R1",
        "threadId": thread_id(A, JID1),
        "to": JID1,
        "status": "delivered",
    }
    assert await stored_status(store, "3EB0R1") == "delivered"
    assert await store.apply_receipt(A, "3EB0R1", "delivered", at) is None  # a repeat

    read = await store.apply_receipt(A, "3EB0R1", "read", at + timedelta(seconds=1))
    assert read is not None and read.data["status"] == "read" and read.seq == 4
    assert await stored_status(store, "3EB0R1") == "read"
    assert await store.apply_receipt(A, "3EB0R1", "delivered", at) is None  # never back
    assert await store.apply_receipt(A, "3EB0R1", "read", at) is None
    assert await stored_status(store, "3EB0R1") == "read"

    # 'read' first (the delivered receipt got lost or comes late): delivered changes nothing
    await sent_item(store, "k2", "3EB0R2")
    assert await store.apply_receipt(A, "3EB0R2", "read", at) is not None
    assert await store.apply_receipt(A, "3EB0R2", "delivered", at) is None
    assert await stored_status(store, "3EB0R2") == "read"

    statuses = [e.data["status"] for e in await everything(store)]
    assert statuses == ["queued", "sent", "delivered", "read", "queued", "sent", "read"]


async def test_a_receipt_for_a_message_not_sent_by_the_outbox_is_ignored(store: Any) -> None:
    await store.save_messages([msg("from-phone", inbound=False)])
    assert await store.apply_receipt(A, "from-phone", "delivered", T0) is None
    assert await store.apply_receipt(A, "never-seen", "read", T0) is None
    await sent_item(store, "k1", "3EB0A")
    assert await store.apply_receipt(B, "3EB0A", "read", T0) is None  # another account's id
    assert await stored_status(store, "from-phone") == "sent"
    assert await stored_status(store, "3EB0A") == "sent"
    assert [e.data["status"] for e in await everything(store)] == ["queued", "sent"]
    assert await everything(store, B) == []


# --- reading the log --------------------------------------------------------------------


async def _mixed_log(store: Any) -> list[Event]:
    """Nine events over two accounts and three types, one write each, in this order."""
    await store.save_messages([msg("a1")])
    await store.save_messages([msg("b1", account=B)])
    await store.append_events([phase(A, Phase.QR_READY)])
    await store.record_incident(Incident(B, "temp_ban", "medium", {}, T0))
    await store.save_messages([msg("a2")])
    await store.append_events([phase(B, Phase.CONNECTED)])
    await store.save_messages([msg("b2", account=B)])
    await store.append_events([phase(A, Phase.CONNECTED)])
    await store.save_messages([msg("a3")])
    page: list[Event] = await store.list_events(EventQuery(limit=100))
    return page


async def test_list_events_in_log_order_with_paging(store: Any) -> None:
    assert await store.list_events(EventQuery()) == []
    log = await _mixed_log(store)
    assert [(e.account_id, e.seq) for e in log] == [
        (A, 1), (B, 1), (A, 2), (B, 2), (A, 3), (B, 3), (B, 4), (A, 4), (A, 5),
    ]  # fmt: skip
    assert [e.type for e in log[:4]] == [
        "message.inbound",
        "message.inbound",
        "account.phase",
        "account.incident",
    ]
    pages: list[list[Event]] = []
    after: str | None = None
    while page := await store.list_events(EventQuery(after=after, limit=4)):
        pages.append(page)
        after = page[-1].id
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [e for p in pages for e in p] == log
    assert await store.list_events(EventQuery(after=log[-1].id)) == []
    assert await store.list_events(EventQuery(limit=1)) == log[:1]
    assert await store.latest_event() == log[-1]
    assert await store.get_event(log[3].id) == log[3]
    assert await store.get_event(UNKNOWN_ID) is None


async def test_list_events_filters(store: Any) -> None:
    log = await _mixed_log(store)
    of_a = await store.list_events(EventQuery(account_ids=frozenset({A})))
    assert of_a == [e for e in log if e.account_id == A]
    assert [e.seq for e in of_a] == [1, 2, 3, 4, 5]
    both = await store.list_events(EventQuery(account_ids=frozenset({A, B})))
    assert both == log
    phases = await store.list_events(EventQuery(types=frozenset({"account.phase"})))
    assert phases == [e for e in log if e.type == "account.phase"]
    assert len(phases) == 3
    several = frozenset({"account.phase", "account.incident"})
    of_b = await store.list_events(EventQuery(account_ids=frozenset({B}), types=several))
    assert [(e.type, e.seq) for e in of_b] == [("account.incident", 2), ("account.phase", 3)]
    assert await store.list_events(EventQuery(account_ids=frozenset({"wa-none"}))) == []
    # after an event the filter leaves out: the page still starts after it in log order
    b1 = log[1]
    page = await store.list_events(EventQuery(after=b1.id, account_ids=frozenset({A}), limit=2))
    assert page == [e for e in log[2:] if e.account_id == A][:2]
    inbound = await store.list_events(
        EventQuery(after=log[2].id, types=frozenset({"message.inbound"}))
    )
    assert [e.data["waMessageId"] for e in inbound] == ["a2", "b2", "a3"]


async def test_list_events_after_an_unknown_event_raises(store: Any) -> None:
    await _mixed_log(store)
    with pytest.raises(UnknownEvent) as raised:
        await store.list_events(EventQuery(after=UNKNOWN_ID))
    assert raised.value.event_id == UNKNOWN_ID
    with pytest.raises(UnknownEvent):
        await store.list_events(EventQuery(after=UNKNOWN_ID, account_ids=frozenset({A})))


async def test_events_after_in_seq_order(store: Any) -> None:
    log = await _mixed_log(store)
    of_a = [e for e in log if e.account_id == A]
    assert await store.events_after(A, 0, 100) == of_a
    assert await store.events_after(A, 2, 100) == of_a[2:]
    assert await store.events_after(A, 2, 2) == of_a[2:4]
    assert await store.events_after(A, 5, 100) == []
    assert await store.events_after(B, 3, 100) == [log[6]]
    assert await store.events_after("wa-none", 0, 100) == []


# --- listeners and concurrent writers ---------------------------------------------------


async def test_on_logged_is_called_in_the_loop_after_writes_that_logged(store: Any) -> None:
    calls: list[str] = []

    def first() -> None:
        asyncio.get_running_loop()  # raises outside the event loop's thread
        calls.append("first")

    store.on_logged(first)
    store.on_logged(lambda: calls.append("second"))
    await store.save_messages([msg("m1")])
    assert calls == ["first", "second"]
    assert await store.get_event(inbound_event_id(A, "m1")) is not None  # logged before

    await store.save_messages([msg("m1")])  # a duplicate: nothing logged
    await store.append_events([])
    await store.enqueue(item("k1"))
    await store.enqueue(item("k1"))
    claimed = await store.claim_next(A, T0)
    assert claimed is not None
    await store.mark_retry(claimed.id, "not connected", T0)
    assert calls == ["first", "second"] * 2

    (logged,) = await store.append_events([phase(A)])
    await store.append_events([logged])  # already logged
    await store.record_incident(Incident(A, "qr_timeout", "low", {}, T0))
    assert calls == ["first", "second"] * 4


async def test_concurrent_writers_give_seqs_without_gaps_or_repeats(
    backend: Any, store: Any
) -> None:
    other = await backend.open()

    async def writer(s: Any, n: int) -> None:
        for k in range(4):
            if k % 2:
                await s.append_events([phase(A, reason=f"w{n}-{k}")])
            else:
                await s.save_messages([msg(f"w{n}-{k}", T0 + timedelta(seconds=n))])

    await asyncio.wait_for(
        asyncio.gather(*(writer(s, n) for n, s in enumerate([store, other] * 4))), 120
    )
    events = await everything(store)
    assert [e.seq for e in events] == list(range(1, 33))
    assert len({e.id for e in events}) == 32
    by_list = await store.list_events(EventQuery(account_ids=frozenset({A}), limit=100))
    assert [e.seq for e in by_list] == list(range(1, 33))
    assert await other.latest_event() == events[-1]
