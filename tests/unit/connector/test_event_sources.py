"""The connector's own events: phase changes (in order, once each, retried while the store
fails) and receipts (applied once the send they answer is recorded), on a real store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wafleet.core.models import AccountStatus, Message, OutboxItem
from wafleet.core.phases import Phase
from wafleet.events.model import Event
from wafleet.stores.base import EventQuery
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.event_sources import PhaseEvents, ReceiptRecorder
from wafleet_connector.transport import Receipt

A = "wa-abcdefghijklmnopabcd"
JID = "40799000001@s.whatsapp.net"


class FlakyStore:
    """The real store, whose first ``failures`` event writes fail as a lost database
    connection would (nothing written)."""

    def __init__(self, store: SqliteMessageStore, failures: int) -> None:
        self.store = store
        self.failures = failures

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("the store is away")
        return await self.store.append_events(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteMessageStore]:
    s = await SqliteMessageStore(tmp_path / "messages.db").open()
    yield s
    await s.close()


async def logged(store: SqliteMessageStore, types: set[str]) -> list[Event]:
    return await store.list_events(EventQuery(types=frozenset(types), limit=500))


async def eventually(probe: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"never: {value!r}"
        await asyncio.sleep(0.01)


async def test_each_phase_change_is_one_event_in_order(store: SqliteMessageStore) -> None:
    phases = PhaseEvents(store)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    phases.observe(A, AccountStatus(Phase.CONNECTING))
    phases.observe(A, AccountStatus(Phase.CONNECTING, reason="a new reason, same phase"))
    phases.observe(A, AccountStatus(Phase.QR_READY, qr="code-1", qr_expires_at=at))
    phases.observe(A, AccountStatus(Phase.QR_READY, qr="code-2", qr_expires_at=at))  # rotated
    phases.observe(A, AccountStatus(Phase.PAIRING_CODE_READY, pairing_code="ABCD-EFGH"))
    phases.observe(A, AccountStatus(Phase.CONNECTED, jid=JID))
    phases.observe(A, AccountStatus(Phase.CONNECTED, jid=JID))
    await phases.close(within=5)
    events = await logged(store, {"account.phase"})
    assert [(e.data["phase"], e.data.get("qr") or e.data.get("pairingCode")) for e in events] == [
        ("Connecting", None),
        ("QRReady", "code-1"),
        ("QRReady", "code-2"),
        ("PairingCodeReady", "ABCD-EFGH"),
        ("Connected", None),
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[1].data["qrExpiresAt"] == "2026-12-01T00:00:00.000Z"
    assert events[-1].data["jid"] == JID


async def test_a_failing_store_delays_phase_events_but_loses_none(
    store: SqliteMessageStore,
) -> None:
    flaky = FlakyStore(store, failures=2)
    phases = PhaseEvents(flaky)  # type: ignore[arg-type]
    phases.observe(A, AccountStatus(Phase.CONNECTING))
    phases.observe(A, AccountStatus(Phase.CONNECTED, jid=JID))

    async def both() -> list[Event] | None:
        events = await logged(store, {"account.phase"})
        return events if len(events) == 2 else None

    events = await eventually(both)
    assert flaky.failures == 0
    assert [e.data["phase"] for e in events] == ["Connecting", "Connected"]
    await phases.close(within=1)


async def test_a_forgotten_account_reports_its_phase_again(store: SqliteMessageStore) -> None:
    phases = PhaseEvents(store)
    phases.observe(A, AccountStatus(Phase.CONNECTED, jid=JID))
    phases.forget(A)  # it moved away, and came back
    phases.observe(A, AccountStatus(Phase.CONNECTED, jid=JID))
    await phases.close(within=5)
    assert len(await logged(store, {"account.phase"})) == 2


async def test_a_receipt_waits_for_its_send_to_be_recorded(store: SqliteMessageStore) -> None:
    """The receipt comes while the send is in flight: it must not find 'nothing sent'."""
    item = OutboxItem(id="ob-1", account_id=A, to_jid=JID, body="hi", idempotency_key="k")
    await store.enqueue(item)
    sending = asyncio.Event()
    recorded = asyncio.Event()

    async def settled(account_id: str, within: float) -> None:
        assert account_id == A
        if not recorded.is_set():
            sending.set()
            await asyncio.wait_for(recorded.wait(), within)

    receipts = ReceiptRecorder(store, settled)
    receipts.submit(A, Receipt(wa_id="3EB0AA", status="delivered"))
    await asyncio.wait_for(sending.wait(), 5)  # the recorder waits for the send
    claimed = await store.claim_next(A, datetime.now(UTC))
    assert claimed is not None
    now = datetime.now(UTC)
    await store.mark_sent(item.id, "3EB0AA", now)
    await store.save_messages([Message(A, JID, "outbound", "hi", "3EB0AA", "sent", now, now)])
    recorded.set()
    receipts.submit(A, Receipt(wa_id="3EB0AA", status="played"))  # a voice note: read
    receipts.submit(A, Receipt(wa_id="3EB0AA", status="server-error"))  # not a receipt kind
    await receipts.close(within=5)
    statuses = [e.data["status"] for e in await logged(store, {"message.status"})]
    assert statuses == ["queued", "sent", "delivered", "read"]
    [thread] = await store.list_threads(account_id=A, thread_id=None, limit=10)
    assert [m.status for m in thread.messages] == ["read"]
