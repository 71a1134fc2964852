"""The outbox sender: sends once, retries what never left, never re-sends what may have."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from support.shard import account, close_shard, open_shard
from wafleet.core.models import Incident, OutboxItem
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.outbox import OutboxConfig, OutboxSender
from wafleet_connector.pacing import Backoff
from wafleet_connector.transport import SendError

CONTACT_JID = "40799000001@s.whatsapp.net"


@dataclass
class ScriptedSession:
    """A session whose sends fail as scripted, then succeed."""

    failures: list[SendError] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    async def send_text(self, to_jid: str, text: str) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(text)
        return f"3EB0{len(self.sent):016X}"

    async def logout(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def item(n: int, account_id: str = "wa-a") -> OutboxItem:
    return OutboxItem(
        id=f"ob-{n}",
        account_id=account_id,
        to_jid=CONTACT_JID,
        body=f"m{n}",
        idempotency_key=f"k{n}",
    )


async def wait_status(store: SqliteMessageStore, item_id: str, status: str) -> OutboxItem:
    for _ in range(300):
        found = await store.get_outbox(item_id)
        if found is not None and found.status == status:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"{item_id} never became {status}: {found}")


async def sender_for(
    store: SqliteMessageStore, incidents: list[Incident], rate: float = 100
) -> OutboxSender:
    async def incident(found: Incident) -> None:
        incidents.append(found)

    config = OutboxConfig(send_rate=rate, send_burst=1, retry=Backoff(0.01, 0.02))
    return OutboxSender(store, config, incident, lambda *_: None)


async def test_not_reached_is_retried_and_sent_once(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "m.db").open()
    incidents: list[Incident] = []
    sender = await sender_for(store, incidents)
    session = ScriptedSession(failures=[SendError("not connected", reached=False)] * 2)
    try:
        await store.enqueue(item(1))
        sender.start("wa-a", session)
        sent = await wait_status(store, "ob-1", "sent")
        assert sent.attempt_count == 2 and sent.provider_message_id == "3EB0" + "0" * 15 + "1"
        assert session.sent == ["m1"]
        threads = await store.list_threads(account_id="wa-a", thread_id=None, limit=10)
        assert [(m.direction, m.body) for m in threads[0].messages] == [("outbound", "m1")]
        assert incidents == []
    finally:
        await sender.close()
        await store.close()


async def test_maybe_reached_is_ambiguous_and_never_resent(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "m.db").open()
    incidents: list[Incident] = []
    sender = await sender_for(store, incidents)
    session = ScriptedSession(failures=[SendError("timeout after write", reached=True)])
    try:
        await store.enqueue(item(1))
        sender.start("wa-a", session)
        found = await wait_status(store, "ob-1", "ambiguous")
        assert "not re-sent" in (found.error or "")
        await asyncio.sleep(0.1)
        assert session.sent == []
        assert [i.type for i in incidents] == ["send_ambiguous"]
    finally:
        await sender.close()
        await store.close()


async def test_per_account_rate_limit(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "m.db").open()
    sender = await sender_for(store, [], rate=10)
    session = ScriptedSession()
    try:
        for n in range(5):
            await store.enqueue(item(n))
        began = time.monotonic()
        sender.start("wa-a", session)
        await wait_status(store, "ob-4", "sent")
        assert time.monotonic() - began >= 0.35  # 1 at once, then 4 at 10 per second
        assert session.sent == [f"m{n}" for n in range(5)]  # in order
    finally:
        await sender.close()
        await store.close()


async def test_send_cut_by_a_crash_is_ambiguous_on_start(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "messages.db").open()
    await store.enqueue(item(1, account_id="wa-test1"))
    claimed = await store.claim_next("wa-test1", datetime.now(UTC))
    assert claimed is not None and claimed.status == "sending"
    await store.close()  # the process died mid-send

    shard = await open_shard(tmp_path)
    try:
        found = await shard.store.get_outbox("ob-1")
        assert found is not None and found.status == "ambiguous"
        await shard.link(account(1))
        await asyncio.sleep(0.2)
        assert shard.sim.received("+40799000001") == [], "an ambiguous send was re-sent"
    finally:
        await close_shard(shard)


async def test_queued_while_offline_is_sent_after_connect(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(1)
    try:
        await shard.store.enqueue(item(7, account_id=spec.id))
        await shard.link(spec)
        await wait_status(shard.store, "ob-7", "sent")
        assert [m["text"] for m in shard.sim.received("+40799000001")] == ["m7"]
    finally:
        await close_shard(shard)


async def test_items_queued_by_another_process_are_found_by_the_shard_poll(
    tmp_path: Path,
) -> None:
    store = await SqliteMessageStore(tmp_path / "m.db").open()
    sender = await sender_for(store, [])
    session = ScriptedSession()
    try:
        sender.start("wa-a", session)
        await asyncio.sleep(0.1)  # the worker is idle now, waiting for a wake-up
        other = await SqliteMessageStore(tmp_path / "m.db").open()  # e.g. the API pod
        await other.enqueue(item(3))  # no notify: a different process did this
        await other.close()
        await wait_status(store, "ob-3", "sent")
        assert session.sent == ["m3"]
    finally:
        await sender.close()
        await store.close()


async def test_a_second_connected_does_not_start_a_second_sender(tmp_path: Path) -> None:
    store = await SqliteMessageStore(tmp_path / "m.db").open()
    sender = await sender_for(store, [], rate=1000)
    session = ScriptedSession()
    try:
        sender.start("wa-a", session)
        sender.start("wa-a", session)  # Connected again on the same stream (keepalive)
        senders = [t for t in asyncio.all_tasks() if t.get_name() == "outbox-wa-a"]
        assert len(senders) == 1
        for n in range(20):
            await store.enqueue(item(n))
        sender.notify("wa-a")
        await wait_status(store, "ob-19", "sent")
        assert sorted(session.sent) == sorted(f"m{n}" for n in range(20))  # each once
        other = ScriptedSession()
        sender.start("wa-a", other)  # a new stream: the old sender gives way

        def live() -> int:
            return len([t for t in asyncio.all_tasks() if t.get_name() == "outbox-wa-a"])

        for _ in range(200):
            if live() == 1:
                break
            await asyncio.sleep(0.01)
        assert live() == 1
    finally:
        await sender.close()
        await store.close()
