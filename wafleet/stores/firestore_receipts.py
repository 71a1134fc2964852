"""Receipts on Firestore: a delivered or read receipt of a message sent through the outbox.

The outbox item sent with WhatsApp's id is found by a query (``accountId`` and
``providerMessageId``); then one commit (:class:`~wafleet.stores.firestore_seq.Sequencer`)
moves the stored message's ``status``
(``threads/{accountId}__{toJid}/messages/{waMessageId}``) forward by ``RECEIPT_RANK`` and
logs the ``message.status`` event. How far the message got is its stored status or the
furthest receipt already logged for it (a receipt may come before the connector stores its
copy of the message; :mod:`wafleet.stores.firestore_threads` then gives the copy that
status), so a repeated or late receipt changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from google.cloud.firestore import AsyncClient, FieldFilter

from wafleet.core.ids import thread_id
from wafleet.core.models import OutboxItem
from wafleet.events.model import (
    RECEIPT_RANK,
    Event,
    MessageStatus,
    receipt_event,
    status_event_id,
)
from wafleet.stores.firestore_codec import MESSAGES, OUTBOX, THREADS, outbox_from
from wafleet.stores.firestore_seq import Plan, Read, Reads, Request, Sequencer, Writes


async def sent_item(client: AsyncClient, account_id: str, wa_message_id: str) -> OutboxItem | None:
    """The account's outbox item sent with this WhatsApp id (the oldest, should there be
    several), or None: not sent through the outbox."""
    query = (
        client.collection(OUTBOX)
        .where(filter=FieldFilter("accountId", "==", account_id))
        .where(filter=FieldFilter("providerMessageId", "==", wa_message_id))
        .limit(10)
    )
    items = [outbox_from(snap.id, snap.to_dict() or {}) async for snap in query.stream()]
    return min(items, key=lambda i: (i.created_at, i.id)) if items else None


async def apply_receipt(
    client: AsyncClient,
    seq: Sequencer,
    account_id: str,
    *,
    wa_message_id: str,
    status: MessageStatus,
    at: datetime,
) -> Event | None:
    """Move the sent message's status forward and log it, in one commit; None when no item
    was sent with that id or the message got that far already."""
    if status not in RECEIPT_RANK:
        raise ValueError(f"a receipt is one of {sorted(RECEIPT_RANK)}, not {status!r}")
    item = await sent_item(client, account_id, wa_message_id)
    if item is None:
        return None  # not sent through the outbox
    thread = client.collection(THREADS).document(thread_id(account_id, item.to_jid))
    ref = thread.collection(MESSAGES).document(wa_message_id)
    ids = {s: status_event_id(account_id, item.id, s) for s in RECEIPT_RANK}
    event = receipt_event(account_id, wa_message_id, item.to_jid, status, outbox_id=item.id, at=at)

    def decide(reads: Reads, writes: Writes) -> Plan[None]:
        stored = reads.data(ref)
        # How far it got: its stored status (every sent message is at least sent), or a
        # receipt logged before the connector stored its copy of the message.
        if stored is None:
            rank = RECEIPT_RANK["sent"]
        else:
            rank = RECEIPT_RANK.get(str(stored.get("status")), 0)
        for other, other_rank in RECEIPT_RANK.items():
            if other_rank > rank and reads.logged(ids[other]):
                rank = other_rank
        if RECEIPT_RANK[status] <= rank:
            return Plan(None)  # a repeat, or a late receipt behind a later one
        if stored is not None:
            writes.update(ref, {"status": status})
        return Plan(None, [event])

    request = Request(account_id, [Read([ref], ("status",))], list(ids.values()))
    _, logged = await seq.commit(request, decide)
    return logged[0] if logged else None
