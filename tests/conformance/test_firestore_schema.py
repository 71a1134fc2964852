"""What only Firestore has: the legacy documents as stored, leases, legacy data.

(A batch's round trips and a crash between a message and its thread are checked in
``test_firestore_events.py``: each account's messages, thread and events are one commit.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud.firestore import AsyncClient

from support.firestore import FirestoreEmulator
from wafleet.core.ids import outbox_id
from wafleet.core.models import Incident, Message, OutboxItem, utcnow
from wafleet.core.settings import Settings
from wafleet.stores.base import INTERRUPTED_ERROR
from wafleet.stores.factory import open_store
from wafleet.stores.firestore_messages import FirestoreMessageStore

pytestmark = pytest.mark.firestore

T0 = datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
A = "wa-aaaaaaaaaaaaaaaaaaaa"
JID = "40700000001@s.whatsapp.net"


def msg(mid: str, at: datetime, jid: str = JID) -> Message:
    return Message(A, jid, "inbound", f"body {mid}", mid, "delivered", at, at)


def item(key: str, created: datetime = T0) -> OutboxItem:
    return OutboxItem(
        id=outbox_id(A, key),
        account_id=A,
        to_jid=JID,
        body=f"hello {key}",
        idempotency_key=key,
        next_attempt_at=created,
        created_at=created,
        updated_at=created,
    )


@pytest.fixture
async def store(firestore_client: AsyncClient) -> FirestoreMessageStore:
    return FirestoreMessageStore(firestore_client, worker_id="pod-a")


async def raw(client: AsyncClient, path: str) -> dict[str, Any]:
    snap = await client.document(path).get()
    assert snap.exists, path
    return snap.to_dict() or {}


async def test_documents_follow_the_legacy_schema(
    store: FirestoreMessageStore, firestore_client: AsyncClient
) -> None:
    await store.save_messages([msg("3EB0A", T0)])
    thread = await raw(firestore_client, f"threads/{A}__{JID}")
    assert thread == {"accountId": A, "clientJid": JID, "lastMessageAt": T0}
    message = await raw(firestore_client, f"threads/{A}__{JID}/messages/3EB0A")
    assert set(message) == {
        *("accountId", "clientJid", "direction", "body", "waMessageId", "status"),
        *("tsClient", "tsServer", "createdAt"),
    }
    assert message["tsClient"] == "2025-03-01T12:00:00.500Z"  # an ISO string, as in legacy
    assert message["tsServer"] == T0 and isinstance(message["createdAt"], datetime)

    queued, _ = await store.enqueue(item("k1"))
    outbox = await raw(firestore_client, f"outbox/{queued.id}")
    assert outbox["payload"] == {"message": "hello k1"} and outbox["body"] == "hello k1"
    assert outbox["threadId"] == f"{A}__{JID}" and outbox["status"] == "queued"
    assert {"claimedBy", "leaseUntil", "attemptCount", "nextAttemptAt", "updatedAt"} <= set(outbox)
    claimed = await store.claim_next(A, T0)
    assert claimed is not None
    outbox = await raw(firestore_client, f"outbox/{queued.id}")
    assert (outbox["claimedBy"], outbox["leaseUntil"]) == ("pod-a", T0 + timedelta(minutes=5))
    await store.mark_sent(queued.id, "3EB0SENT", T0 + timedelta(seconds=1))
    outbox = await raw(firestore_client, f"outbox/{queued.id}")
    assert (outbox["status"], outbox["providerMessageId"], outbox["leaseUntil"]) == (
        "sent",
        "3EB0SENT",
        None,
    )

    await store.record_incident(Incident(A, "logged_out", "high", {"code": 401}, T0))
    [incident] = [s.to_dict() async for s in firestore_client.collection("incidents").stream()]
    assert incident is not None
    assert incident["expiresAt"] == T0 + timedelta(days=90)  # the TTL policy's field
    assert (incident["ts"], incident["details"]) == (T0, {"code": 401})


async def test_recovery_respects_other_workers_leases(
    firestore_emulator: FirestoreEmulator, firestore_client: AsyncClient
) -> None:
    pod_a = FirestoreMessageStore(firestore_client, worker_id="pod-a")
    other = AsyncClient(project=firestore_emulator.project)
    pod_b = FirestoreMessageStore(other, worker_id="pod-b", owns_client=True)
    try:
        for key in ("live", "dead"):
            await pod_a.enqueue(item(key, created=T0 + timedelta(seconds=len(key))))
        dead = await pod_a.claim_next(A, T0 + timedelta(seconds=10))  # lease ended in 2025
        live = await pod_a.claim_next(A, utcnow())  # leased for five more minutes
        assert dead is not None and live is not None
        assert await pod_b.recover_interrupted() == [dead.id]  # pod-a died with it
        assert (await pod_b.get_outbox(live.id)).status == "sending"  # type: ignore[union-attr]
        assert await pod_a.recover_interrupted([A]) == [live.id]  # pod-a restarted
        recovered = await pod_b.get_outbox(live.id)
        assert recovered is not None
        assert (recovered.status, recovered.error) == ("ambiguous", INTERRUPTED_ERROR)
    finally:
        await pod_b.close()


async def test_legacy_documents_are_read(
    store: FirestoreMessageStore, firestore_client: AsyncClient
) -> None:
    """Documents the legacy server wrote: 'processing', no idempotencyKey, payload only."""
    await firestore_client.document("outbox/legacy-1").set(
        {
            "accountId": A,
            "toJid": JID,
            "threadId": f"{A}__{JID}",
            "payload": {"message": "from the old server"},
            "status": "queued",
            "attemptCount": 2,
            "nextAttemptAt": T0,
            "createdAt": T0,
            "updatedAt": T0,
        }
    )
    await firestore_client.document("outbox/legacy-2").set(
        {"accountId": A, "toJid": JID, "status": "processing", "createdAt": T0}
    )
    old = await store.get_outbox("legacy-1")
    assert old is not None
    assert (old.body, old.idempotency_key, old.attempt_count) == (
        "from the old server",
        "legacy-1",
        2,
    )
    claimed = await store.claim_next(A, T0)
    assert claimed is not None and claimed.id == "legacy-1"
    processing = await store.get_outbox("legacy-2")
    assert processing is not None and processing.status == "sending"
    assert sorted(await store.recover_interrupted()) == ["legacy-1", "legacy-2"]


async def test_open_store_chooses_by_settings(
    firestore_emulator: FirestoreEmulator, tmp_path: Path
) -> None:
    settings = Settings(store="firestore", firestore_project=firestore_emulator.project)
    store = await open_store(settings)
    try:
        assert isinstance(store, FirestoreMessageStore)
        assert await store.save_messages([msg("f1", T0)]) == 1
        assert len(await store.list_threads(account_id=A, thread_id=None, limit=5)) == 1
    finally:
        await store.close()
