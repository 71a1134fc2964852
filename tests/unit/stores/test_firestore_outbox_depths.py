"""The outbox depth on Firestore (the official emulator): what the legacy server left
"processing" waits too (the rest is in the conformance suite, on both stores)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.cloud.firestore import AsyncClient

from support.firestore import firestore_client, firestore_emulator
from wafleet.core.models import OutboxItem
from wafleet.stores.firestore_codec import OUTBOX
from wafleet.stores.firestore_messages import FirestoreMessageStore

__all__ = ["firestore_client", "firestore_emulator"]

pytestmark = pytest.mark.firestore


def queued(n: int, account_id: str) -> OutboxItem:
    return OutboxItem(
        id=f"ob-{account_id}-{n}",
        account_id=account_id,
        to_jid="40799000001@s.whatsapp.net",
        body=f"hello {n}",
        idempotency_key=f"k{n}",
    )


async def test_firestore_depths_count_what_waits(firestore_client: AsyncClient) -> None:
    store = FirestoreMessageStore(firestore_client, worker_id="connector-0")
    for n in range(3):
        await store.enqueue(queued(n, "wa-a"))
    await store.enqueue(queued(5, "wa-b"))
    claimed = await store.claim_next("wa-b", datetime.now(UTC))
    assert claimed is not None
    await store.mark_sent(claimed.id, "3EB0SENT", datetime.now(UTC))
    assert await store.claim_next("wa-a", datetime.now(UTC)) is not None  # sending
    # An item the legacy server left "processing" still waits.
    legacy = firestore_client.collection(OUTBOX).document("legacy-1")
    await legacy.set({"accountId": "wa-b", "status": "processing", "body": "x"})
    depths = await store.outbox_depths(["wa-a", "wa-b", "wa-c"])
    assert depths == {"wa-a": 3, "wa-b": 1, "wa-c": 0}
