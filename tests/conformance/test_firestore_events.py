"""What only Firestore has in the event log and webhooks: the documents as stored, the seq
allocation under racing clients, commit-order paging, the cost of a batch, the TTL field,
and the due-lane mirror's incremental reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud.firestore import AsyncClient

from support.firestore import FirestoreEmulator
from wafleet.core.ids import outbox_id
from wafleet.core.models import AccountStatus, Message, OutboxItem, utcnow
from wafleet.core.phases import Phase
from wafleet.core.settings import Settings
from wafleet.events.model import Event, inbound_event, inbound_event_id, phase_event
from wafleet.events.webhooks import LaneKey, Webhook
from wafleet.stores import firestore_pb
from wafleet.stores.base import EventQuery
from wafleet.stores.firestore_codec import message_doc
from wafleet.stores.firestore_due import DueLanes
from wafleet.stores.firestore_messages import FirestoreMessageStore
from wafleet.stores.firestore_webhooks import FirestoreWebhookStore

pytestmark = pytest.mark.firestore

T0 = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
A, B = "wa-aaaaaaaaaaaaaaaaaaaa", "wa-bbbbbbbbbbbbbbbbbbbb"
JID = "40700000001@s.whatsapp.net"


def msg(mid: str, at: datetime = T0, *, account: str = A, jid: str = JID) -> Message:
    return Message(account, jid, "inbound", f"body {mid}", mid, "delivered", at, at)


def accounts(n: int) -> list[str]:
    """``n`` account ids, A and B first."""
    return [A, B, *(f"wa-acct{k:015d}" for k in range(n - 2))]


def item(key: str) -> OutboxItem:
    return OutboxItem(
        outbox_id(A, key), A, JID, "hi", key, next_attempt_at=T0, created_at=T0, updated_at=T0
    )


def phase(account: str = A, reason: str = "test") -> Event:
    return phase_event(account, AccountStatus(phase=Phase.CONNECTED, reason=reason))


@pytest.fixture
async def store(firestore_client: AsyncClient) -> FirestoreMessageStore:
    return FirestoreMessageStore(firestore_client, worker_id="pod-a")


async def raw(client: AsyncClient, path: str) -> dict[str, Any]:
    snap = await client.document(path).get()
    assert snap.exists, path
    return snap.to_dict() or {}


class Commits:
    """Counts the atomic commits sent (and can make the next ones fail)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[int] = []
        self.fail_next = 0
        real = firestore_pb.Commit.commit

        async def counted(commit: firestore_pb.Commit) -> None:
            self.sizes.append(len(commit))
            if self.fail_next:
                self.fail_next -= 1
                raise exceptions.ServiceUnavailable("injected: the connection dropped")
            await real(commit)

        monkeypatch.setattr(firestore_pb.Commit, "commit", counted)


# --- the documents ----------------------------------------------------------------------


async def test_event_and_head_documents(
    store: FirestoreMessageStore, firestore_client: AsyncClient
) -> None:
    before = utcnow()
    assert await store.save_messages([msg("m1")]) == 1
    (event,) = await store.events_after(A, 0, 10)
    doc = await raw(firestore_client, f"events/{inbound_event_id(A, 'm1')}")
    assert set(doc) == {"accountId", "type", "seq", "at", "loggedAt", "data", "expiresAt"}
    assert (doc["accountId"], doc["type"], doc["seq"]) == (A, "message.inbound", 1)
    assert doc["data"] == dict(inbound_event(msg("m1")).data)
    assert doc["at"] == event.at and event.at >= before - timedelta(milliseconds=1)
    assert doc["expiresAt"] == event.at + timedelta(days=7)  # the default retention
    assert isinstance(doc["loggedAt"], datetime)  # the commit's server time
    head = await raw(firestore_client, f"event_heads/{A}")
    assert (head["seq"], head["at"]) == (1, event.at)
    assert head["updatedAt"] == doc["loggedAt"]  # one commit: one time
    # the legacy documents are as before
    assert await raw(firestore_client, f"threads/{A}__{JID}") == {
        "accountId": A,
        "clientJid": JID,
        "lastMessageAt": T0,
    }


async def test_expires_at_follows_the_retention(firestore_emulator: FirestoreEmulator) -> None:
    firestore_emulator.clear()
    settings = Settings(
        store="firestore", firestore_project=firestore_emulator.project, event_retention_days=2
    )
    store = FirestoreMessageStore.from_settings(settings)
    other = FirestoreMessageStore(
        AsyncClient(project=firestore_emulator.project),
        event_retention=timedelta(hours=5),
        owns_client=True,
    )
    try:
        (two_days,) = await store.append_events([phase(A)])
        (five_hours,) = await other.append_events([phase(B)])
        for event, kept in ((two_days, timedelta(days=2)), (five_hours, timedelta(hours=5))):
            doc = await raw(store.client, f"events/{event.id}")
            assert doc["expiresAt"] == event.at + kept
        assert await store.prune_events(utcnow() + timedelta(days=30)) == 0  # TTL does it
        assert await store.get_event(two_days.id) == two_days
    finally:
        await store.close()
        await other.close()


# --- seq allocation ---------------------------------------------------------------------


async def test_two_clients_racing_on_one_head_keep_seq_dense(
    firestore_emulator: FirestoreEmulator, store: FirestoreMessageStore
) -> None:
    other = FirestoreMessageStore(
        AsyncClient(project=firestore_emulator.project), worker_id="pod-b", owns_client=True
    )
    try:
        stores = [store, other]

        async def writer(n: int) -> None:
            s = stores[n % 2]
            for k in range(5):
                if k % 3 == 0:
                    await s.save_messages([msg(f"w{n}-{k}"), msg(f"w{n}-{k}-b")])
                elif k % 3 == 1:
                    await s.append_events([phase(A, f"w{n}-{k}")])
                else:
                    key = f"w{n}-{k}"
                    await s.enqueue(item(key))

        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(10))), 120)
        events = await store.events_after(A, 0, 1000)
        total = 10 * (2 * 2 + 2 + 1)  # per writer: two batches of 2, two phases, one queued
        assert [e.seq for e in events] == list(range(1, total + 1))
        assert len({e.id for e in events}) == total
        head = await raw(store.client, f"event_heads/{A}")
        assert head["seq"] == total
        # the commit times go with the seqs: one account's log order is its seq order
        logged = [(await raw(store.client, f"events/{e.id}"))["loggedAt"] for e in events]
        assert logged == sorted(logged)
        in_log_order = await store.list_events(EventQuery(limit=1000))
        assert [e.seq for e in in_log_order] == list(range(1, total + 1))
    finally:
        await other.close()


async def test_a_duplicate_redelivered_batch_logs_nothing(
    store: FirestoreMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = accounts(50)
    batch = [
        msg(f"3EB0{n:04d}", T0 + timedelta(milliseconds=n), account=ids[n % 50]) for n in range(500)
    ]
    commits = Commits(monkeypatch)
    assert await store.save_messages(batch) == 500
    # one commit per account: its 10 messages, their 10 events, their thread, its head
    assert commits.sizes == [22] * 50
    log = await store.list_events(EventQuery(limit=1000))
    assert len(log) == 500
    commits.sizes.clear()
    assert await store.save_messages(batch) == 0
    assert commits.sizes == []  # nothing to write: read once, nothing sent
    assert await store.list_events(EventQuery(limit=1000)) == log
    # a redelivery mixed with new messages logs only the new ones
    mixed = [*batch[:20], msg("3EB0NEW", account=ids[3])]
    assert await store.save_messages(mixed) == 1
    assert [e.id for e in await store.list_events(EventQuery(after=log[-1].id))] == [
        inbound_event_id(ids[3], "3EB0NEW")
    ]
    assert (await store.events_after(ids[3], 10, 10))[0].seq == 11


async def test_a_failed_commit_stores_neither_the_message_nor_its_event(
    store: FirestoreMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = Commits(monkeypatch)
    commits.fail_next = 1
    with pytest.raises(exceptions.ServiceUnavailable):
        await store.save_messages([msg("m1")])
    assert await store.list_threads(account_id=A, thread_id=None, limit=10) == []
    assert await store.events_after(A, 0, 10) == []
    assert await store.save_messages([msg("m1")]) == 1  # the redelivery stores it, once
    assert [e.seq for e in await store.events_after(A, 0, 10)] == [1]


async def test_a_thread_left_behind_is_repaired_by_a_redelivery(
    store: FirestoreMessageStore, firestore_client: AsyncClient
) -> None:
    """A message an older, non-atomic writer stored without moving its thread."""
    late = msg("m2", T0 + timedelta(minutes=1))
    await store.save_messages([msg("m1", T0)])
    thread = firestore_client.document(f"threads/{A}__{JID}")
    await thread.collection("messages").document("m2").set(message_doc(late))
    copy = msg("m2", T0 + timedelta(hours=5))  # the same id, a later time
    assert await store.save_messages([copy]) == 0
    [found] = await store.list_threads(account_id=A, thread_id=None, limit=10)
    assert found.last_message_at == T0 + timedelta(minutes=1)  # the stored time, not the copy's
    assert [e.seq for e in await store.events_after(A, 0, 10)] == [1]  # nothing logged


async def test_an_inbound_event_already_logged_is_not_logged_again(
    store: FirestoreMessageStore,
) -> None:
    """The message document is the dedupe key; an event logged without it is found when its
    creation fails, and the message is stored without a second event."""
    (early,) = await store.append_events([inbound_event(msg("m1"))])
    assert early.seq == 1
    assert await store.save_messages([msg("m1"), msg("m2")]) == 2
    events = await store.events_after(A, 0, 10)
    assert [(e.seq, e.id) for e in events] == [
        (1, inbound_event_id(A, "m1")),
        (2, inbound_event_id(A, "m2")),
    ]


# --- reading in commit order ------------------------------------------------------------


async def test_pages_follow_the_commit_order_across_clients(
    firestore_emulator: FirestoreEmulator, store: FirestoreMessageStore
) -> None:
    other = FirestoreMessageStore(AsyncClient(project=firestore_emulator.project), owns_client=True)
    try:
        ids = accounts(40)  # more than one `in` query (30 accounts each)

        async def writer(s: FirestoreMessageStore, n: int) -> None:
            for k in range(3):
                await s.append_events([phase(ids[(n * 7 + k) % 40], f"{n}-{k}")])

        await asyncio.gather(*(writer([store, other][n % 2], n) for n in range(40)))
        everything = await store.list_events(EventQuery(limit=1000))
        assert len(everything) == 120
        times = [
            ((await raw(store.client, f"events/{e.id}"))["loggedAt"], e.seq, e.id)
            for e in everything
        ]
        assert times == sorted(times)  # (commit time, seq, id)
        for account in ids:  # within an account the log order is the seq order
            seqs = [e.seq for e in everything if e.account_id == account]
            assert seqs == list(range(1, len(seqs) + 1))
        wanted = frozenset(ids[:35])
        paged: list[Event] = []
        after: str | None = None
        while page := await other.list_events(EventQuery(after=after, account_ids=wanted, limit=7)):
            paged += page
            after = page[-1].id
        assert paged == [e for e in everything if e.account_id in wanted]
        typed = await store.list_events(
            EventQuery(account_ids=wanted, types=frozenset({"account.phase", "message.inbound"}))
        )
        assert typed == paged[:100]
        assert await store.latest_event() == everything[-1]
    finally:
        await other.close()


# --- webhooks ---------------------------------------------------------------------------


async def test_due_lanes_read_only_what_changed(
    firestore_client: AsyncClient, store: FirestoreMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = FirestoreWebhookStore(firestore_client, worker_id="pod-a")
    hook = Webhook("wh_test1", "https://hooks.example.com/1", "whsec_x", created_at=T0)
    await hooks.create_webhook(hook)
    for account in accounts(20):
        await store.append_events([phase(account)])
    read: dict[str, int] = {}
    real = DueLanes._read

    async def counted(self: DueLanes, collection: str, seen: datetime | None) -> Any:
        found = await real(self, collection, seen)
        read[collection] = len(found)
        return found

    monkeypatch.setattr(DueLanes, "_read", counted)
    monkeypatch.setattr(DueLanes, "MARGIN", timedelta(0))
    now = utcnow()
    assert len(await hooks.due_lanes([hook], now, 100)) == 20
    # the first look reads every head (and there is no lane yet)
    assert read == {"event_heads": 20, "webhook_lanes": 0}
    assert len(await hooks.due_lanes([hook], now, 100)) == 20
    assert read == {"event_heads": 0, "webhook_lanes": 0}  # nothing changed: nothing read
    lane = await hooks.claim_lane(LaneKey(hook.id, A), hook, now, timedelta(seconds=30))
    assert lane is not None
    await store.append_events([phase(B)])
    assert len(await hooks.due_lanes([hook], now, 100)) == 20  # A's lane is its own claim
    assert read == {"event_heads": 1, "webhook_lanes": 1}  # B's head, A's lane


async def test_lane_and_dead_letter_documents(
    firestore_client: AsyncClient, store: FirestoreMessageStore
) -> None:
    hooks = FirestoreWebhookStore(firestore_client, worker_id="pod-a")
    hook = Webhook("wh_test1", "https://hooks.example.com/1", "whsec_x", created_at=T0)
    await hooks.create_webhook(hook)
    assert await raw(firestore_client, "webhooks/wh_test1") == {
        "url": hook.url,
        "secret": hook.secret,
        "events": None,
        "accountIds": None,
        "createdAt": T0,
        "disabledAt": None,
        "disabledReason": None,
    }
    (event,) = await store.append_events([phase(A)])
    now = utcnow()
    lane = await hooks.claim_lane(LaneKey(hook.id, A), hook, now, timedelta(seconds=30))
    assert lane is not None
    doc = await raw(firestore_client, f"webhook_lanes/{hook.id}__{A}")
    assert set(doc) == {
        *("webhookId", "accountId", "cursor", "attempts", "firstFailureAt", "lastError"),
        *("nextAttemptAt", "claim", "claimedBy", "leaseUntil", "updatedAt"),
    }
    assert (doc["cursor"], doc["claim"], doc["claimedBy"]) == (0, lane.claim, "pod-a")
    moved = await hooks.lane_dead_letter(lane, event, "HTTP 500", now, timedelta(seconds=30))
    assert moved is not None and moved.cursor == 1
    [failure] = [
        s.to_dict() async for s in firestore_client.collection("webhook_failures").stream()
    ]
    assert failure is not None
    assert (failure["webhookId"], failure["eventId"], failure["event"]) == (
        hook.id,
        event.id,
        event.body(),
    )
    assert await hooks.delete_webhook(hook.id)
    assert [s async for s in firestore_client.collection("webhook_lanes").stream()] == []
    assert [s async for s in firestore_client.collection("webhook_failures").stream()] == []


# --- receipts racing the sent message's copy -------------------------------------------


async def test_receipts_racing_the_stored_copy_end_consistent(
    firestore_emulator: FirestoreEmulator, store: FirestoreMessageStore
) -> None:
    """The connector stores its copy of a sent message while another pod applies the
    receipt: whichever commits second sees the first, so the copy ends with the furthest
    receipt logged for it, and the receipt is logged once."""
    other = FirestoreMessageStore(AsyncClient(project=firestore_emulator.project), owns_client=True)
    try:
        sent: list[str] = []
        for n in range(12):
            key = f"k{n:02d}"
            await store.enqueue(item(key))
            claimed = await store.claim_next(A, T0 + timedelta(days=1))
            assert claimed is not None
            await store.mark_sent(claimed.id, f"3EB0{key}", T0)
            sent.append(f"3EB0{key}")
        copies = [Message(A, JID, "outbound", "hi", wa_id, "sent", T0, T0) for wa_id in sent]
        await asyncio.gather(
            *(store.save_messages([copy]) for copy in copies),
            *(other.apply_receipt(A, wa_id, "delivered", T0) for wa_id in sent[::2]),
            *(other.apply_receipt(A, wa_id, "read", T0) for wa_id in sent[1::3]),
        )
        [thread] = await store.list_threads(account_id=A, thread_id=None, limit=100)
        statuses = {m.wa_message_id: m.status for m in thread.messages}
        for n, wa_id in enumerate(sent):
            expected = "read" if n % 3 == 1 else "delivered" if n % 2 == 0 else "sent"
            assert statuses[wa_id] == expected, wa_id
        events = await store.events_after(A, 0, 1000)
        receipts = [e for e in events if e.data["status"] in ("delivered", "read")]
        assert len(receipts) == len({e.id for e in receipts})
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    finally:
        await other.close()
