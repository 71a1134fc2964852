"""accounts/{id}: the legacy document from our records, and its writer (the official emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud.firestore import SERVER_TIMESTAMP, AsyncClient

from support.firestore import FirestoreEmulator, firestore_client, firestore_emulator
from wafleet.core.models import AccountSpec, AccountStatus, Disconnect
from wafleet.core.phases import LEGACY_STATUS, Phase
from wafleet.core.qr_png import qr_png_data_url
from wafleet.stores.firestore_accounts import (
    ACCOUNTS,
    FirestoreAccounts,
    WorkerInfo,
    account_doc,
    account_state,
)
from wafleet.stores.firestore_io import close_client
from wafleet_api.qr import qr_data_url

__all__ = ["firestore_client", "firestore_emulator"]

T0 = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_MS = T0.replace(microsecond=123000)
PHONE = "+40712000001"
SPEC = AccountSpec(
    id="account_prod_0123456789abcdef0123456789abcdef",
    phone=PHONE,
    name="Front desk",
    created_at=T0,
    resource_name="wa-0123456789abcdef",
)
WORKER = WorkerInfo("wafleet-connector", "wafleet-connector-0", "0.1.0")
OTHER = WorkerInfo("wafleet-connector", "wafleet-connector-1", "0.1.0")
PROGRESS = {Phase.PENDING, Phase.CONNECTING, Phase.QR_READY, Phase.PAIRING_CODE_READY}
PROGRESS |= {Phase.CONNECTED}


def status(phase: Phase, **changes: Any) -> AccountStatus:
    return AccountStatus(phase=phase, last_event_at=T0, updated_at=T0, **changes)


# ----- the mapping ---------------------------------------------------------------------------


def test_a_qr_code_is_stored_as_the_png_data_url_the_api_shows() -> None:
    state = account_state(SPEC, status(Phase.QR_READY, qr="2@abc,def", reason="scan it"))
    doc = account_doc(state, WORKER, qr_png_data_url("2@abc,def"))
    assert doc == {
        "accountId": SPEC.id,  # the id that names the account in data, not its resource name
        "name": "Front desk",
        "phone": PHONE,
        "phoneE164": PHONE,
        "status": "qr_ready",
        "phase": "QRReady",
        "qrCode": qr_data_url("2@abc,def"),
        "pairingCode": None,
        "lastError": None,
        "createdAt": T0_MS,
        "updatedAt": SERVER_TIMESTAMP,
        "lastEventAt": T0_MS,
        "worker": {
            "service": "wafleet-connector",
            "instanceId": "wafleet-connector-0",
            "version": "0.1.0",
        },
    }
    assert doc["qrCode"].startswith("data:image/png;base64,")


def test_connected_clears_the_codes_and_carries_the_history() -> None:
    lost = Disconnect("connection_lost", 428, T0 - timedelta(minutes=5))
    connected = status(
        Phase.CONNECTED,
        jid="40712000001@s.whatsapp.net",
        qr="stale",  # a runner clears these; the document never shows them out of phase
        pairing_code="ABCD-EFGH",
        last_message_at=T0 + timedelta(microseconds=400),  # truncated, not rounded
        last_disconnect=lost,
    )
    doc = account_doc(account_state(SPEC, connected), WORKER, None)
    assert (doc["status"], doc["qrCode"], doc["pairingCode"]) == ("connected", None, None)
    assert doc["waJid"] == "40712000001@s.whatsapp.net"
    assert doc["lastMessageAt"] == T0_MS
    assert doc["lastDisconnectedAt"] == (T0 - timedelta(minutes=5)).replace(microsecond=123000)
    assert (doc["lastDisconnectReason"], doc["lastDisconnectCode"]) == ("connection_lost", 428)
    assert account_state(SPEC, connected).qr is None


def test_history_fields_are_left_out_while_unknown() -> None:
    doc = account_doc(account_state(SPEC, AccountStatus(phase=Phase.PENDING)), WORKER, None)
    for absent in ("waJid", "lastMessageAt", "lastEventAt", "lastDisconnectedAt"):
        assert absent not in doc
    assert doc["status"] == "connecting"


def test_a_pairing_code_shows_only_while_it_is_waited_for() -> None:
    waiting = account_state(SPEC, status(Phase.PAIRING_CODE_READY, pairing_code="ABCD-EFGH"))
    assert account_doc(waiting, WORKER, None)["pairingCode"] == "ABCD-EFGH"
    assert account_doc(waiting, WORKER, None)["status"] == "qr_ready"


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_has_its_legacy_status_and_failures_their_reason(phase: Phase) -> None:
    state = account_state(SPEC, status(phase, reason="why it is so"))
    assert state.status == LEGACY_STATUS[phase]
    assert state.last_error == (None if phase in PROGRESS else "why it is so")


def test_what_changes_with_every_report_alone_is_no_change() -> None:
    base = status(Phase.CONNECTED, jid="40712000001@s.whatsapp.net")
    later = replace(base, last_event_at=T0 + timedelta(hours=1), updated_at=T0 + timedelta(hours=1))
    assert account_state(SPEC, base) == account_state(SPEC, replace(later, reconnects=3))
    assert account_state(SPEC, base) != account_state(SPEC, replace(later, last_message_at=T0))
    assert account_state(SPEC, base) != account_state(SPEC, replace(base, phase=Phase.SUSPENDED))


def test_the_state_repr_has_no_phone_and_no_codes() -> None:
    state = account_state(SPEC, status(Phase.QR_READY, qr="2@secret-qr"))
    shown = repr(state)
    assert PHONE not in shown and "2@secret-qr" not in shown and SPEC.id in shown


# ----- the writer (the official emulator) --------------------------------------------------


@pytest.fixture
async def other_client(firestore_emulator: FirestoreEmulator) -> AsyncIterator[AsyncClient]:
    """A second client (another connector pod) on the same database."""
    client = AsyncClient(project=firestore_emulator.project)
    yield client
    await close_client(client)


async def stored(client: AsyncClient) -> dict[str, Any] | None:
    snapshot = await client.collection(ACCOUNTS).document(SPEC.id).get()
    return snapshot.to_dict()


def ours() -> bool:
    return True


def not_ours() -> bool:
    return False


QR = account_state(SPEC, status(Phase.QR_READY, qr="2@first"))
CONNECTED = account_state(
    SPEC,
    status(Phase.CONNECTED, jid="40712000001@s.whatsapp.net", last_message_at=T0),
)


@pytest.mark.firestore
async def test_the_first_write_creates_the_legacy_document(firestore_client: AsyncClient) -> None:
    writer = FirestoreAccounts(firestore_client, WORKER)
    assert await writer.write(QR, ours)
    doc = await stored(firestore_client)
    assert doc is not None
    assert (doc["accountId"], doc["status"], doc["phase"]) == (SPEC.id, "qr_ready", "QRReady")
    assert doc["qrCode"] == qr_data_url("2@first")
    assert (doc["phone"], doc["phoneE164"]) == (PHONE, PHONE)
    # Timestamps are Firestore Timestamps (datetimes here), in milliseconds.
    assert doc["createdAt"] == T0_MS and doc["lastEventAt"] == T0_MS
    assert isinstance(doc["updatedAt"], datetime)
    assert doc["worker"] == WORKER.as_map()

    assert await writer.write(CONNECTED, ours)
    doc = await stored(firestore_client)
    assert doc is not None
    assert (doc["status"], doc["qrCode"], doc["waJid"]) == (
        "connected",
        None,
        "40712000001@s.whatsapp.net",
    )
    assert doc["lastMessageAt"] == T0_MS


@pytest.mark.firestore
async def test_a_legacy_document_keeps_what_wafleet_does_not_write(
    firestore_client: AsyncClient,
) -> None:
    legacy_seen = datetime(2026, 1, 17, 9, 30, tzinfo=UTC)
    await (
        firestore_client.collection(ACCOUNTS)
        .document(SPEC.id)
        .set(
            {
                "accountId": SPEC.id,
                "phone": "0712 000 001",
                "status": "connected",
                "claimedBy": "legacy-worker-1",
                "leaseUntil": legacy_seen,
                "lastMessageAt": legacy_seen,
                "worker": {"service": "whatsapp-backend", "commit": "abc123", "uptime": 99},
            }
        )
    )
    assert await FirestoreAccounts(firestore_client, WORKER).write(QR, ours)
    doc = await stored(firestore_client)
    assert doc is not None
    assert (doc["claimedBy"], doc["leaseUntil"]) == ("legacy-worker-1", legacy_seen)
    assert doc["lastMessageAt"] == legacy_seen  # wafleet knows of no newer message yet
    assert doc["worker"] == WORKER.as_map()  # replaced whole: no stale commit or uptime
    assert (doc["phone"], doc["status"]) == (PHONE, "qr_ready")


@pytest.mark.firestore
async def test_after_a_hand_over_the_old_owner_cannot_write_over_the_new_one(
    firestore_client: AsyncClient, other_client: AsyncClient
) -> None:
    old = FirestoreAccounts(firestore_client, WORKER)
    new = FirestoreAccounts(other_client, OTHER)
    assert await old.write(QR, ours)
    assert await new.write(CONNECTED, ours)  # the new owner starts from a fresh read
    # A write the old owner had sent before letting the account go: the document has
    # moved on since the version it last saw, so it fails; asked, it is no longer ours.
    late = account_state(SPEC, status(Phase.QR_READY, qr="2@stale"))
    assert not await old.write(late, not_ours)
    doc = await stored(firestore_client)
    assert doc is not None
    assert (doc["status"], doc["worker"]["instanceId"]) == ("connected", OTHER.instance_id)
    # Still the owner (say the document was edited by hand): it writes from a fresh read.
    assert await new.write(replace(CONNECTED, name="Reception"), ours)
    await firestore_client.collection(ACCOUNTS).document(SPEC.id).update({"name": "edited"})
    assert await new.write(replace(CONNECTED, name="Reception 2"), ours)
    doc = await stored(firestore_client)
    assert doc is not None and doc["name"] == "Reception 2"


@pytest.mark.firestore
async def test_delete_marks_the_document_and_a_re_add_writes_it_again(
    firestore_client: AsyncClient,
) -> None:
    writer = FirestoreAccounts(firestore_client, WORKER)
    assert await writer.write(QR, ours)
    before = await stored(firestore_client)
    assert await writer.mark_deleted(SPEC.id)
    doc = await stored(firestore_client)
    assert doc is not None and before is not None
    assert (doc["status"], doc["phase"], doc["qrCode"]) == ("deleted", "Deleted", None)
    assert doc["updatedAt"] >= before["updatedAt"]
    assert (doc["accountId"], doc["name"], doc["createdAt"]) == (SPEC.id, "Front desk", T0_MS)
    assert await writer.write(QR, ours)  # the same phone added again: the same id
    doc = await stored(firestore_client)
    assert doc is not None and doc["status"] == "qr_ready"


@pytest.mark.firestore
async def test_delete_of_an_account_never_written_creates_nothing(
    firestore_client: AsyncClient,
) -> None:
    assert not await FirestoreAccounts(firestore_client, WORKER).mark_deleted(SPEC.id)
    assert await stored(firestore_client) is None


@pytest.mark.firestore
async def test_a_late_delete_leaves_an_account_added_again_elsewhere(
    firestore_client: AsyncClient, other_client: AsyncClient
) -> None:
    deleting = FirestoreAccounts(firestore_client, WORKER)
    assert await deleting.write(QR, ours)
    assert await FirestoreAccounts(other_client, OTHER).write(CONNECTED, ours)  # re-added there
    assert not await deleting.mark_deleted(SPEC.id)
    doc = await stored(firestore_client)
    assert doc is not None and doc["status"] == "connected"


@pytest.mark.firestore
async def test_a_restarted_instance_marks_its_own_document_deleted(
    firestore_client: AsyncClient, other_client: AsyncClient
) -> None:
    assert await FirestoreAccounts(firestore_client, WORKER).write(CONNECTED, ours)
    restarted = FirestoreAccounts(other_client, WORKER)  # same pod name, nothing cached
    assert await restarted.mark_deleted(SPEC.id)
    doc = await stored(firestore_client)
    assert doc is not None and doc["status"] == "deleted"
