"""What an account does when WhatsApp says something unusual: each through the sim."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from support.shard import Shard, account, close_shard, open_shard
from wafleet.core.models import OutboxItem
from wafleet.core.phases import Phase
from wafleet.core.phones import mask_phone
from wafleet.sim.service import SimConfig, SimError, SimWhatsApp
from wafleet.sim.wire import Conn, Frame
from wafleet_connector.frame_client import Dialer
from wafleet_connector.runner import UnlinkPending
from wafleet_connector.sim_transport import local_dialer
from wafleet_connector.transport import SessionSpec


@pytest.fixture
async def shard(tmp_path: Path) -> Shard:
    shard = await open_shard(tmp_path)
    yield shard  # type: ignore[misc]
    await close_shard(shard)


async def counted_shard(tmp_path: Path, **config: object) -> tuple[Shard, list[str]]:
    """A shard whose dials are recorded (account ids, in order)."""
    dials: list[str] = []
    holder: dict[str, Dialer] = {}

    async def dial(spec: SessionSpec) -> Conn:
        dials.append(spec.account_id)
        return await holder["inner"](spec)

    shard = await open_shard(tmp_path, dialer=dial, **config)
    holder["inner"] = local_dialer(shard.sim)
    return shard, dials


async def stored(shard: Shard, account_id: str) -> dict[str, list[str]]:
    """Thread id -> inbound texts, once the journal has forwarded what it holds."""
    await shard.manager.journal.flush()
    threads = await shard.store.list_threads(account_id=account_id, thread_id=None, limit=100)
    return {t.id: [m.body for m in t.messages if m.direction == "inbound"] for t in threads}


async def test_a_qr_scanned_by_another_phone_is_unlinked_at_once(shard: Shard) -> None:
    mine, other = account(1), account(2)
    shard.manager.ensure(mine)
    await shard.wait_phase(mine.id, Phase.QR_READY)
    status = shard.manager.status(mine.id)
    assert status is not None and status.qr is not None
    shard.sim.scan(status.qr, other.phone)  # the wrong phone scans this account's code
    await shard.wait_phase(mine.id, Phase.LOGGED_OUT)
    status = shard.manager.status(mine.id)
    assert status is not None and status.reason is not None
    assert mask_phone(other.phone) in status.reason and "not by this account's phone" in (
        status.reason
    )
    assert other.phone not in status.reason  # the other phone is masked
    assert status.jid is None
    assert shard.sim.devices_of(other.phone) == [], "the wrong phone's device is still linked"
    # The other phone's own account links and is the only one that gets its messages.
    await shard.link(other)
    await shard.sim.deliver("+40799000001", other.phone, "hello other")
    await shard.wait_for(
        "the message stored",
        lambda: shard.manager.status(other.id).last_message_at,  # type: ignore[union-attr]
    )
    assert await stored(shard, mine.id) == {}
    assert list((await stored(shard, other.id)).values()) == [["hello other"]]


class _ClosesAfterCode:
    """A stream that drops right after showing a pairing code (the phone never types it)."""

    def __init__(self, inner: Conn) -> None:
        self._inner = inner
        self._drop = False

    async def send(self, frame: Frame) -> None:
        await self._inner.send(frame)

    async def recv(self) -> Frame | None:
        if self._drop:
            await self._inner.close()
            return None
        frame = await self._inner.recv()
        self._drop = frame is not None and frame.get("type") == "pairing_code"
        return frame

    async def close(self) -> None:
        await self._inner.close()


async def test_pairing_codes_are_capped_then_wait_for_regenerate(tmp_path: Path) -> None:
    codes: list[int] = []
    holder: dict[str, Dialer] = {}

    async def dial(spec: SessionSpec) -> Conn:
        codes.append(1)
        return _ClosesAfterCode(await holder["inner"](spec))

    shard = await open_shard(tmp_path, dialer=dial, pairing_max_codes=2)
    holder["inner"] = local_dialer(shard.sim)
    spec = account(3, login="pairingCode")
    try:
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.QR_TIMEOUT)
        status = shard.manager.status(spec.id)
        assert status is not None
        assert "2 pairing codes were not entered" in (status.reason or "")
        assert status.pairing_code is None
        dials = len(codes)
        assert dials == 3  # two codes shown, the third refused by the guard
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_for("a new attempt", lambda: len(codes) > dials)
    finally:
        await close_shard(shard)


async def test_delete_keeps_the_session_until_whatsapp_confirms_the_unlink(
    shard: Shard,
) -> None:
    spec = account(4)
    await shard.link(spec)
    session_file = shard.data_dir / "sessions" / f"{spec.id}.db"
    deleted: list[str] = []

    async def on_deleted(account_id: str) -> None:
        deleted.append(account_id)

    shard.manager.on_deleted = on_deleted
    await shard.sim.fault(spec.phone, "logout_fails", seconds=1.0)
    with pytest.raises(UnlinkPending) as refused:
        await shard.manager.remove(spec.id)
    assert "could not be unlinked" in str(refused.value)
    status = shard.manager.status(spec.id)
    assert status is not None and status.phase == Phase.FAILED
    assert "retried" in (status.reason or "")
    assert session_file.exists(), "the session was wiped while the device is still linked"
    assert len(shard.sim.devices_of(spec.phone)) == 1
    # Once WhatsApp accepts the logout again, the runner finishes the delete by itself.
    await shard.wait_for("the delete to finish", lambda: deleted == [spec.id], timeout=10)
    assert shard.sim.devices_of(spec.phone) == []
    assert not session_file.exists()
    assert shard.manager.status(spec.id) is None


async def test_deleting_a_never_linked_account_opens_no_session(tmp_path: Path) -> None:
    shard, dials = await counted_shard(tmp_path)
    spec = account(5)
    try:
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.QR_READY)
        assert (shard.data_dir / "sessions" / f"{spec.id}.db").exists()  # schema only
        await shard.manager.remove(spec.id)
        assert dials == [spec.id], "a session was opened to log out a device never linked"
    finally:
        await close_shard(shard)


async def test_keepalive_timeout_then_restored_keeps_one_sender(shard: Shard) -> None:
    spec = account(6)
    await shard.link(spec)
    connected_at = shard.manager.status(spec.id).connected_at  # type: ignore[union-attr]
    await shard.sim.fault(spec.phone, "keepalive_timeout")
    await shard.wait_phase(spec.id, Phase.RECONNECTING)
    status = shard.manager.status(spec.id)
    assert status is not None and "keepalive" in (status.reason or "")
    assert not [t for t in asyncio.all_tasks() if t.get_name() == f"outbox-{spec.id}"]
    await shard.sim.fault(spec.phone, "keepalive_restored")
    await shard.wait_phase(spec.id, Phase.CONNECTED)
    status = shard.manager.status(spec.id)
    assert status is not None and status.connected_at == connected_at  # the same stream
    item = OutboxItem("o-1", spec.id, "40799000002@s.whatsapp.net", "after restore", "k-1")
    await shard.store.enqueue(item)
    shard.manager.notify_outbox(spec.id)
    await shard.wait_for("the send", lambda: shard.sim.received("+40799000002"))
    senders = [t for t in asyncio.all_tasks() if t.get_name() == f"outbox-{spec.id}"]
    assert len(senders) == 1
    assert [m["text"] for m in shard.sim.received("+40799000002")] == ["after restore"]


async def test_client_outdated_fails_with_an_upgrade_reason_and_no_loop(tmp_path: Path) -> None:
    shard, dials = await counted_shard(tmp_path)
    spec = account(7)
    try:
        await shard.link(spec)
        await shard.sim.fault(spec.phone, "client_outdated", seconds=60)
        await shard.wait_phase(spec.id, Phase.FAILED)
        status = shard.manager.status(spec.id)
        assert status is not None and "outdated" in (status.reason or "")
        assert "upgrade" in (status.reason or "")
        before = len(dials)
        await shard.manager.command(spec.id, "regenerate")  # one more try, on request
        await shard.wait_for("the try", lambda: len(dials) == before + 1)
        await shard.wait_phase(spec.id, Phase.FAILED)
        assert len(dials) == before + 1
    finally:
        await close_shard(shard)


async def test_lid_addressed_contacts_land_in_their_phone_thread(shard: Shard) -> None:
    spec = account(8)
    await shard.link(spec)
    contact = "+40799000003"
    await shard.sim.deliver(contact, spec.phone, "by pn")
    await shard.sim.deliver(contact, spec.phone, "by lid", addressing="lid")
    await shard.sim.deliver(contact, spec.phone, "lid only", addressing="lid_only")
    pn_thread = f"{spec.id}__40799000003@s.whatsapp.net"
    lid_thread = f"{spec.id}__{shard.sim.lid(contact)}"

    async def both() -> bool:
        threads = await stored(shard, spec.id)
        return sum(len(v) for v in threads.values()) == 3

    for _ in range(200):
        if await both():
            break
        await asyncio.sleep(0.02)
    threads = await stored(shard, spec.id)
    assert sorted(threads[pn_thread]) == ["by lid", "by pn"]
    assert threads[lid_thread] == ["lid only"]
    # Replies reach the contact whether addressed by number or by LID.
    for n, to in enumerate(["40799000003@s.whatsapp.net", shard.sim.lid(contact)]):
        await shard.store.enqueue(OutboxItem(f"o-{n}", spec.id, to, f"reply {n}", f"k-{n}"))
    shard.manager.notify_outbox(spec.id)
    await shard.wait_for("both replies", lambda: len(shard.sim.received(contact)) == 2)
    assert sorted(m["text"] for m in shard.sim.received(contact)) == ["reply 0", "reply 1"]


PASSKEY_WORDS = ("passkey", "migrate-legacy", "regenerate-qr")


async def _passkey_asked(shard: Shard, account_id: str, dials: list[str]) -> None:
    """The account waits in PasskeyRequired: its reason says what to do, one incident, its
    session is stopped (the sim shows it no more codes) and nothing dials again."""
    await shard.wait_phase(account_id, Phase.PASSKEY_REQUIRED)
    status = shard.manager.status(account_id)
    assert status is not None
    assert all(word in (status.reason or "") for word in PASSKEY_WORDS), status.reason
    assert status.qr is None and status.pairing_code is None and status.jid is None
    await shard.wait_for("the link to end", lambda: shard.sim.summary()["linking"] == 0)
    incidents = await shard.store.list_incidents(account_id=account_id)
    assert [(i.type, i.severity) for i in incidents] == [("passkey_required", "high")]
    assert dials == [account_id], "the account dialled again after the passkey request"


async def test_a_phone_that_asks_for_a_passkey_on_a_qr_scan_waits_for_a_command(
    tmp_path: Path,
) -> None:
    shard, dials = await counted_shard(tmp_path)
    spec = account(9)
    try:
        shard.sim.set_passkey(spec.phone, True)
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.QR_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.qr is not None
        with pytest.raises(SimError) as asked:
            shard.sim.scan(status.qr, spec.phone)
        assert asked.value.code == "passkey_required"
        await _passkey_asked(shard, spec.id, dials)
        assert shard.sim.devices_of(spec.phone) == []
        # The phone still asks: regenerate-qr starts a new link, which asks again.
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_phase(spec.id, Phase.QR_READY)
        assert len(dials) == 2
        status = shard.manager.status(spec.id)
        assert status is not None and status.qr is not None
        with pytest.raises(SimError):
            shard.sim.scan(status.qr, spec.phone)
        await shard.wait_phase(spec.id, Phase.PASSKEY_REQUIRED)
        assert len(await shard.store.list_incidents(account_id=spec.id)) == 2
        # Once the phone asks no passkey, regenerate-qr links it.
        shard.sim.set_passkey(spec.phone, False)
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_phase(spec.id, Phase.QR_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.qr is not None
        shard.sim.scan(status.qr, spec.phone)
        await shard.wait_phase(spec.id, Phase.CONNECTED)
        assert len(shard.sim.devices_of(spec.phone)) == 1
    finally:
        await close_shard(shard)


async def test_a_phone_that_asks_for_a_passkey_for_a_pairing_code_waits_for_a_command(
    tmp_path: Path,
) -> None:
    shard, dials = await counted_shard(tmp_path)
    spec = account(10, login="pairingCode")
    try:
        shard.sim.set_passkey(spec.phone, True)
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.PAIRING_CODE_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.pairing_code is not None
        with pytest.raises(SimError) as asked:
            shard.sim.pair(status.pairing_code, spec.phone)
        assert asked.value.code == "passkey_required"
        await _passkey_asked(shard, spec.id, dials)
        # Once the phone asks no passkey, regenerate-qr links it with a new code.
        shard.sim.set_passkey(spec.phone, False)
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_phase(spec.id, Phase.PAIRING_CODE_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.pairing_code is not None
        shard.sim.pair(status.pairing_code, spec.phone)
        await shard.wait_phase(spec.id, Phase.CONNECTED)
    finally:
        await close_shard(shard)


async def test_the_passkey_phase_survives_a_connector_restart_without_a_new_link(
    tmp_path: Path,
) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    shard, dials = await counted_shard(tmp_path, sim=sim)
    spec = account(11)
    shard.sim.set_passkey(spec.phone, True)
    try:
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.QR_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.qr is not None
        with pytest.raises(SimError):
            shard.sim.scan(status.qr, spec.phone)
        await _passkey_asked(shard, spec.id, dials)
        stored_status = shard.manager.status(spec.id)
    finally:
        await close_shard(shard)
    assert stored_status is not None
    again, dials_again = await counted_shard(tmp_path, sim=sim)
    try:
        again.manager.ensure(spec, stored_status)
        await again.wait_phase(spec.id, Phase.PASSKEY_REQUIRED)
        await again.manager.command(spec.id, "suspend")  # a command gets through at once
        await again.wait_phase(spec.id, Phase.SUSPENDED)
        assert dials_again == [], "the waiting account opened a session after the restart"
        assert len(await again.store.list_incidents(account_id=spec.id)) == 1
    finally:
        await close_shard(again)


async def test_a_connect_that_hangs_is_retried_after_the_connect_timeout(tmp_path: Path) -> None:
    """WhatsApp accepts the connection and never answers (the sim's unresponsive fault):
    after connect_timeout the start is ended and retried with backoff, until one connects."""
    shard, dials = await counted_shard(
        tmp_path, connect_timeout=0.5, backoff_base=0.05, backoff_max=0.1
    )
    spec = account(17)
    try:
        await shard.link(spec)
        await shard.sim.fault(spec.phone, "unresponsive", seconds=2.0)
        await shard.wait_phase(spec.id, Phase.RECONNECTING)
        await shard.wait_for(
            "a start ended by the connect timeout",
            lambda: "did not answer within 0.5 s" in (shard.manager.status(spec.id).reason or ""),  # type: ignore[union-attr]
        )
        tries = len(dials)
        await shard.wait_for("another try", lambda: len(dials) > tries)
        await shard.wait_phase(spec.id, Phase.CONNECTED)  # the fault is over: no new scan
        status = shard.manager.status(spec.id)
        assert status is not None and status.last_disconnect is not None
        assert "did not answer" in status.last_disconnect.reason
    finally:
        await close_shard(shard)
