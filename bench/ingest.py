"""Inbound ingest benchmark: messages persisted per second in Firestore, ours against legacy.

Starts the official Firestore emulator on a free loopback port and, in one run,
stores the same kind of inbound burst two ways:

- ours: ``FirestoreMessageStore.save_messages`` in batches (as the connector's
  journal forwards them): one read of the batch's documents, then one atomic commit per
  account holding its new messages, their ``message.inbound`` events, the threads and
  the account's event head (each write conditional on what was read);
- legacy: a faithful re-implementation of the legacy server's per-message path
  (audit, section 10): for each message, a transaction reading and creating
  ``inboundDedupe/{accountId}__{messageId}`` (with its 7-day ``expiresAt``), then
  the message document write, then the thread write with merge; one message at
  a time.

Both runs are preceded by a short warm-up (the emulator's JIT), use their own
account ids, and are checked for the number of messages stored. Prints both
rates; the last line is the ratio.

Usage: .venv/bin/python bench/ingest.py [--messages N] [--legacy-messages N] [--batch B]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient
from google.cloud.firestore_v1.async_transaction import AsyncTransaction, async_transactional

from support.firestore import FirestoreEmulator, find_jar, unavailable_reason
from wafleet.core.models import Message
from wafleet.stores.firestore_codec import message_doc
from wafleet.stores.firestore_io import close_client
from wafleet.stores.firestore_messages import FirestoreMessageStore

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CHATS = 20


def burst(account_id: str, count: int) -> list[Message]:
    return [
        Message(
            account_id=account_id,
            client_jid=f"4070000{n % CHATS:04d}@s.whatsapp.net",
            direction="inbound",
            body=f"message {n} of the burst, a line of ordinary length",
            wa_message_id=f"3EB0{n:016X}",
            status="delivered",
            ts_client=T0 + timedelta(milliseconds=n),
            ts_server=T0 + timedelta(milliseconds=n + 100),
        )
        for n in range(count)
    ]


async def ours(client: AsyncClient, messages: list[Message], batch: int) -> int:
    store = FirestoreMessageStore(client, worker_id="bench")
    stored = 0
    for i in range(0, len(messages), batch):
        stored += await store.save_messages(messages[i : i + batch])
    return stored


@async_transactional
async def _dedupe(transaction: AsyncTransaction, client: AsyncClient, m: Message) -> bool:
    ref = client.collection("inboundDedupe").document(f"{m.account_id}__{m.wa_message_id}")
    snapshot = await ref.get(transaction=transaction)
    if snapshot.exists:
        return False
    transaction.create(
        ref,
        {
            "accountId": m.account_id,
            "providerMessageId": m.wa_message_id,
            "processedAt": SERVER_TIMESTAMP,
            "expiresAt": datetime.now(UTC) + timedelta(days=7),
        },
    )
    return True


async def legacy(client: AsyncClient, messages: list[Message]) -> int:
    stored = 0
    for m in messages:  # the legacy handler awaits each message in turn
        if not await _dedupe(client.transaction(), client, m):
            continue
        thread_id = f"{m.account_id}__{m.client_jid}"
        thread = client.collection("threads").document(thread_id)
        await thread.collection("messages").document(m.wa_message_id).set(message_doc(m))
        await thread.set(
            {"accountId": m.account_id, "clientJid": m.client_jid, "lastMessageAt": m.ts_client},
            merge=True,
        )
        stored += 1
    return stored


async def run(args: argparse.Namespace, project: str) -> tuple[float, float]:
    client = AsyncClient(project=project)
    try:
        await ours(client, burst("wa-warmupours", 1000), args.batch)
        await legacy(client, burst("wa-warmuplegacy", 100))

        messages = burst("wa-benchours", args.messages)
        began = time.perf_counter()
        stored = await ours(client, messages, args.batch)
        ours_seconds = time.perf_counter() - began
        assert stored == len(messages), (stored, len(messages))
        assert await ours(client, messages, args.batch) == 0  # a replay stores nothing

        messages = burst("wa-benchlegacy", args.legacy_messages)
        began = time.perf_counter()
        stored = await legacy(client, messages)
        legacy_seconds = time.perf_counter() - began
        assert stored == len(messages), (stored, len(messages))
    finally:
        await close_client(client)
    ours_rate = args.messages / ours_seconds
    legacy_rate = args.legacy_messages / legacy_seconds
    print(
        f"ours:   {ours_rate:8.0f} messages/s  ({args.messages} messages in batches of "
        f"{args.batch}, {ours_seconds:.2f} s)"
    )
    print(
        f"legacy: {legacy_rate:8.0f} messages/s  ({args.legacy_messages} messages one at a "
        f"time, {legacy_seconds:.2f} s)"
    )
    return ours_rate, legacy_rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="messages through ours")
    parser.add_argument(
        "--legacy-messages", type=int, default=1000, help="messages through the legacy path"
    )
    parser.add_argument("--batch", type=int, default=500, help="messages per save_messages call")
    args = parser.parse_args()
    reason = unavailable_reason()
    jar = find_jar()
    if reason is not None or jar is None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with FirestoreEmulator(jar) as emulator:
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        print(f"Firestore emulator on {emulator.host} (project {emulator.project})")
        ours_rate, legacy_rate = asyncio.run(run(args, emulator.project))
    print(f"ratio: {ours_rate / legacy_rate:.1f}x (ours / legacy messages per second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
