"""A shard's metrics read back from the real code paths: a session on the in-process sim
(messages in and out, the send latency, the outbox depth, the phases), the journal's
depth, and the shard Lease's counters; an account that ends leaves no series."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.shard import account, close_shard, open_shard
from wafleet.core.metrics import Metrics
from wafleet.core.models import Message, OutboxItem
from wafleet.kube.client import KubeError
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.journal import InboundJournal
from wafleet_connector.metrics import ShardCollector
from wafleet_connector.outbox_depth import OutboxDepths

CONTACT = "+40799000001"
CONTACT_JID = "40799000001@s.whatsapp.net"


def outbox_item(n: int, account_id: str, queued_ago: float = 0.0) -> OutboxItem:
    queued = datetime.now(UTC) - timedelta(seconds=queued_ago)
    return OutboxItem(
        id=f"ob-{account_id}-{n}",
        account_id=account_id,
        to_jid=CONTACT_JID,
        body=f"hello {n}",
        idempotency_key=f"k{n}",
        created_at=queued,
        next_attempt_at=queued,
    )


async def scrape(metrics: Metrics) -> None:
    """What /metrics does before it collects."""
    await metrics.refresh()


async def test_a_session_moves_its_series_and_the_send_latency(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    shard.manager.outbox_depths = OutboxDepths(shard.store, min_interval=0)  # every scrape
    metrics = Metrics(process=False)
    metrics.add(ShardCollector("0", lambda: shard.manager))
    linked, waiting = account(1), account(2)
    try:
        await shard.link(linked)
        shard.manager.ensure(waiting)  # shows a QR code: nobody scans it
        await shard.wait_for("a QR code", lambda: shard.manager.status(waiting.id).qr)  # type: ignore[union-attr]
        a, b = {"account": linked.id}, {"account": waiting.id}
        await scrape(metrics)
        assert metrics.sample("wafleet_session_connected", a) == 1
        assert metrics.sample("wafleet_session_connected", b) == 0
        assert metrics.sample("wafleet_session_phase", {**a, "phase": "Connected"}) == 1
        assert metrics.sample("wafleet_session_phase", {**b, "phase": "QRReady"}) == 1
        assert metrics.sample("wafleet_session_phase", {**b, "phase": "Connected"}) is None
        assert metrics.sample("wafleet_shard_sessions", {"shard": "0", "phase": "Connected"}) == 1
        assert metrics.sample("wafleet_shard_sessions", {"shard": "0", "phase": "QRReady"}) == 1
        assert metrics.sample("wafleet_shard_sessions", {"shard": "0", "phase": "Failed"}) == 0

        # In: a contact writes to the linked account (journaled, then stored).
        await shard.sim.deliver(CONTACT, linked.phone, "hi")
        inbound = {**a, "direction": "in"}
        await shard.wait_for(
            "the inbound message counted",
            lambda: metrics.sample("wafleet_session_messages_total", inbound) == 1,
        )
        # Out: one send queued 2 s ago goes out; two wait for the unlinked account.
        await shard.store.enqueue(outbox_item(1, linked.id, queued_ago=2.0))
        for n in (2, 3):
            await shard.store.enqueue(outbox_item(n, waiting.id))
        shard.manager.notify_outbox(linked.id)
        outbound = {**a, "direction": "out"}
        await shard.wait_for(
            "the send counted",
            lambda: metrics.sample("wafleet_session_messages_total", outbound) == 1,
        )
        assert metrics.sample("wafleet_outbox_send_latency_seconds_count") == 1
        latency = metrics.sample("wafleet_outbox_send_latency_seconds_sum")
        assert latency is not None and 2.0 <= latency < 60
        # queued 2 s ago: above the 1 s bucket, within the 5 s one
        assert metrics.sample("wafleet_outbox_send_latency_seconds_bucket", {"le": "1.0"}) == 0
        assert metrics.sample("wafleet_outbox_send_latency_seconds_bucket", {"le": "5.0"}) == 1
        assert metrics.sample("wafleet_outbox_sends_total", {"result": "sent"}) == 1
        await scrape(metrics)
        assert metrics.sample("wafleet_session_outbox_depth", a) == 0
        assert metrics.sample("wafleet_session_outbox_depth", b) == 2
        assert metrics.sample("wafleet_session_journal_depth", a) == 0
        assert metrics.sample("wafleet_session_reconnects_total", a) == 0

        # A lost connection counts a reconnect.
        await shard.sim.fault(linked.phone, "disconnect")
        await shard.wait_for(
            "a reconnect counted",
            lambda: metrics.sample("wafleet_session_reconnects_total", a) == 1,
        )

        # The account goes: so do its series; the shard's counts stay.
        await shard.manager.remove(waiting.id)
        assert metrics.sample("wafleet_session_connected", b) is None
        assert metrics.sample("wafleet_session_outbox_depth", b) is None
        assert metrics.sample("wafleet_session_messages_total", {**b, "direction": "in"}) is None
        assert metrics.sample("wafleet_shard_sessions", {"shard": "0", "phase": "QRReady"}) == 0
        assert metrics.sample("wafleet_outbox_send_latency_seconds_count") == 1
    finally:
        await close_shard(shard)


async def test_a_suspended_account_says_so(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    metrics = Metrics(process=False)
    metrics.add(ShardCollector("3", lambda: shard.manager))
    spec = account(5, suspended=True)
    try:
        shard.manager.ensure(spec)
        await shard.wait_for(
            "the suspended phase",
            lambda: (
                metrics.sample("wafleet_shard_sessions", {"shard": "3", "phase": "Suspended"}) == 1
            ),
        )
        assert metrics.sample("wafleet_session_suspended", {"account": spec.id}) == 1
        assert metrics.sample("wafleet_session_connected", {"account": spec.id}) == 0
    finally:
        await close_shard(shard)


class FailingStore:
    """A message store that refuses every write until ``healthy`` (the journal keeps)."""

    def __init__(self, store: SqliteMessageStore) -> None:
        self.store = store
        self.healthy = False

    async def save_messages(self, messages: list[Message]) -> int:
        if not self.healthy:
            raise OSError("the store is down")
        return await self.store.save_messages(messages)


def inbound(n: int, account_id: str) -> Message:
    return Message(
        account_id=account_id,
        client_jid=CONTACT_JID,
        direction="inbound",
        body=f"text {n}",
        wa_message_id=f"3EB0{n:016X}",
        status="delivered",
        ts_client=datetime.now(UTC),
    )


async def until(check: object, what: str, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_the_journal_depth_counts_what_the_store_has_not_taken(tmp_path: Path) -> None:
    real = await SqliteMessageStore(tmp_path / "messages.db").open()
    store = FailingStore(real)
    journal = InboundJournal(tmp_path / "journal.db", store)  # type: ignore[arg-type]
    await journal.start()
    try:
        for n in range(3):
            assert await journal.append(inbound(n, "wa-a"))
        assert await journal.append(inbound(9, "wa-b"))
        assert not await journal.append(inbound(9, "wa-b"))  # a redelivery adds nothing
        assert dict(journal.depths()) == {"wa-a": 3, "wa-b": 1}
    finally:  # "crash": the forwarder stops, nothing was forwarded
        if journal._task is not None:
            journal._task.cancel()
            await asyncio.gather(journal._task, return_exceptions=True)
        journal._executor.shutdown(wait=True)
    # The next start counts what the file holds, and forwards it once the store is back.
    store.healthy = True
    again = InboundJournal(tmp_path / "journal.db", store)  # type: ignore[arg-type]
    await again.start()
    try:
        await until(lambda: not again.depths(), "the journal to drain")
        assert await again.pending() == 0
    finally:
        await again.close()
        await real.close()


async def test_outbox_depths_count_queued_and_sending_and_refresh_at_a_pace(
    tmp_path: Path,
) -> None:
    store = await SqliteMessageStore(tmp_path / "m.db").open()
    try:
        for n in range(3):
            await store.enqueue(outbox_item(n, "wa-a"))
        await store.enqueue(outbox_item(7, "wa-b"))
        claimed = await store.claim_next("wa-a", datetime.now(UTC))  # sending: still waiting
        assert claimed is not None
        await store.claim_next("wa-b", datetime.now(UTC))
        await store.mark_sent("ob-wa-b-7", "3EB0SENT", datetime.now(UTC))
        assert await store.outbox_depths(["wa-a", "wa-b", "wa-c"]) == {
            "wa-a": 3,
            "wa-b": 0,
            "wa-c": 0,
        }
        now = [0.0]
        depths = OutboxDepths(store, min_interval=5.0, clock=lambda: now[0])
        await depths.refresh(["wa-a"])
        assert depths.get("wa-a") == 3
        await store.enqueue(outbox_item(4, "wa-a"))
        await depths.refresh(["wa-a"])  # within the interval: the last count stands
        assert depths.get("wa-a") == 3
        now[0] = 5.0
        await depths.refresh(["wa-a"])
        assert depths.get("wa-a") == 4
        assert depths.get("wa-b") is None  # not asked for
    finally:
        await store.close()
    # A store that fails to count: no series, rather than the last count shown as current.
    now[0] = 10.0
    await depths.refresh(["wa-a"])  # the store is closed now: counting fails
    assert depths.get("wa-a") is None


async def test_lease_renew_failures_and_losses_are_counted() -> None:
    from unit.connector.test_lease import TIMING, LeaseStore, pod, wait_for  # noqa: PLC0415

    log: list[str] = []
    holder = pod(LeaseStore(), "connector-0", log)
    metrics = Metrics(process=False)
    metrics.add(ShardCollector("0", lambda: None, lambda: holder.lease))
    shard = {"shard": "0"}
    holder.lease.start()
    try:
        await wait_for(holder.lease.held.is_set)
        assert metrics.sample("wafleet_shard_lease_held", shard) == 1
        assert metrics.sample("wafleet_shard_lease_renew_failures_total", shard) == 0
        assert metrics.sample("wafleet_shard_lease_losses_total", shard) == 0
        holder.kube.failing = KubeError(503, "ServiceUnavailable", "etcd is slow")
        await wait_for(lambda: holder.lease.renew_failures >= 2)  # renewals ride it out
        assert metrics.sample("wafleet_shard_lease_held", shard) == 1
        await wait_for(holder.lease.lost.is_set, timeout=TIMING.duration * 3)
        assert metrics.sample("wafleet_shard_lease_held", shard) == 0
        assert metrics.sample("wafleet_shard_lease_losses_total", shard) == 1
        failures = metrics.sample("wafleet_shard_lease_renew_failures_total", shard)
        assert failures is not None and failures >= 2
        assert "connector-0 stopping sessions" in log
    finally:
        await holder.lease.release()
