"""The session manager and account runners against the in-process sim."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from support.shard import account, close_shard, open_shard
from wafleet.core.models import AccountStatus
from wafleet.core.phases import Phase
from wafleet.sim.service import SimConfig, SimWhatsApp
from wafleet.sim.wire import Conn
from wafleet_connector.runner import CommandRefused
from wafleet_connector.transport import SessionSpec


async def test_link_by_qr_then_connected(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(1)
    try:
        await shard.link(spec)
        status = shard.manager.status(spec.id)
        assert status is not None
        assert status.jid == "40712000001@s.whatsapp.net"
        assert status.qr is None and status.connected_at is not None
        session_file = tmp_path / "sessions" / f"{spec.id}.db"
        assert session_file.stat().st_mode & 0o777 == 0o600
        await shard.wait_for(
            "status written",
            lambda: (
                shard.statuses.latest.get(spec.id, status).phase == Phase.CONNECTED
                and spec.id in shard.statuses.latest
            ),
        )
    finally:
        await close_shard(shard)


async def test_pairing_code_login(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(2, login="pairingCode")
    try:
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.PAIRING_CODE_READY)
        status = shard.manager.status(spec.id)
        assert status is not None and status.pairing_code
        shard.sim.pair(status.pairing_code, spec.phone)
        await shard.wait_phase(spec.id, Phase.CONNECTED)
    finally:
        await close_shard(shard)


async def test_qr_loop_guard_stops_until_regenerate(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=0.03, qr_ttl=0.03))
    shard = await open_shard(tmp_path, sim=sim, qr_max_cycles=3)
    spec = account(3)
    try:
        shard.manager.ensure(spec)
        await shard.wait_phase(spec.id, Phase.QR_TIMEOUT)
        status = shard.manager.status(spec.id)
        assert status is not None and status.qr is None
        assert "regenerate-qr" in (status.reason or "")
        await asyncio.sleep(0.2)
        assert shard.phase(spec.id) == Phase.QR_TIMEOUT, "QR codes kept rotating"
        assert sim.summary()["linking"] == 0, "the session was not stopped"
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_phase(spec.id, Phase.QR_READY)
        incidents = await shard.store.list_incidents(account_id=spec.id)
        assert [i.type for i in incidents] == ["qr_timeout"]
    finally:
        await close_shard(shard)


async def test_disconnect_reconnects_with_backoff_and_no_scan(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(4)
    try:
        await shard.link(spec)
        await shard.sim.fault(spec.phone, "disconnect")
        await shard.wait_for("a reconnect", lambda: shard.manager.status(spec.id).reconnects == 1)  # type: ignore[union-attr]
        await shard.wait_phase(spec.id, Phase.CONNECTED)
        status = shard.manager.status(spec.id)
        assert status is not None and status.last_disconnect is not None
        assert status.last_disconnect.reason == "connection_lost"
        assert status.reconnects == 1
        assert shard.sim.summary()["linking"] == 0, "a new QR was asked for"
    finally:
        await close_shard(shard)


async def test_stream_replaced_retries_once_then_waits_for_a_command(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path, replaced_retry=0.3)
    spec = account(5)
    try:
        await shard.link(spec)
        await shard.sim.fault(spec.phone, "stream_replaced")
        await shard.wait_phase(spec.id, Phase.RECONNECTING)
        status = shard.manager.status(spec.id)
        assert status is not None and "another client took over" in (status.reason or "")
        assert status.last_disconnect is not None
        assert status.last_disconnect.reason == "stream_replaced"
        await shard.wait_phase(spec.id, Phase.CONNECTED)  # the one retry
        await shard.sim.fault(spec.phone, "stream_replaced")
        await shard.wait_phase(spec.id, Phase.REPLACED)
        status = shard.manager.status(spec.id)
        assert status is not None and "another client is using" in (status.reason or "")
        assert shard.sim.summary()["live"] == 0  # no reconnect loop against the other client
        await shard.manager.command(spec.id, "regenerate")  # take it back
        await shard.wait_phase(spec.id, Phase.CONNECTED)
    finally:
        await close_shard(shard)


async def test_temp_ban_waits_out_the_ban(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(5)
    try:
        await shard.link(spec)
        began = time.monotonic()
        await shard.sim.fault(spec.phone, "temp_ban", seconds=0.5)
        await shard.wait_phase(spec.id, Phase.RECONNECTING)
        status = shard.manager.status(spec.id)
        assert status is not None and "temp_ban" in (status.reason or "")
        await shard.wait_phase(spec.id, Phase.CONNECTED)
        assert time.monotonic() - began >= 0.45, "reconnected before the ban ended"
    finally:
        await close_shard(shard)


async def test_logged_out_wipes_session_and_waits_for_regenerate(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(6)
    try:
        await shard.link(spec)
        session_file = tmp_path / "sessions" / f"{spec.id}.db"
        assert session_file.exists()
        await shard.sim.fault(spec.phone, "logout")
        await shard.wait_phase(spec.id, Phase.LOGGED_OUT)
        assert not session_file.exists()
        await asyncio.sleep(0.2)
        assert shard.phase(spec.id) == Phase.LOGGED_OUT, "a QR was shown without being asked"
        await shard.manager.command(spec.id, "regenerate")
        await shard.wait_phase(spec.id, Phase.QR_READY)
    finally:
        await close_shard(shard)


async def test_regenerate_refused_while_connected(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(7)
    try:
        await shard.link(spec)
        with pytest.raises(CommandRefused, match="connected"):
            await shard.manager.command(spec.id, "regenerate")
        assert shard.phase(spec.id) == Phase.CONNECTED
    finally:
        await close_shard(shard)


async def test_suspend_keeps_session_and_resume_reconnects(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    spec = account(8)
    try:
        await shard.link(spec)
        await shard.manager.command(spec.id, "suspend")
        assert shard.phase(spec.id) == Phase.SUSPENDED
        assert shard.sim.summary()["live"] == 0
        await shard.manager.command(spec.id, "resume")
        await shard.wait_phase(spec.id, Phase.CONNECTED)
    finally:
        await close_shard(shard)


async def test_remove_logs_out_and_wipes(tmp_path: Path) -> None:
    shard = await open_shard(tmp_path)
    linked, suspended = account(9), account(10)
    try:
        await shard.link(linked)
        await shard.link(suspended)
        await shard.manager.command(suspended.id, "suspend")
        for spec in (linked, suspended):
            await shard.manager.remove(spec.id)
            assert not (tmp_path / "sessions" / f"{spec.id}.db").exists()
            assert shard.sim.devices_of(spec.phone) == [], "the device is still linked"
            assert shard.manager.status(spec.id) is None
    finally:
        await close_shard(shard)


async def test_connect_failure_is_a_phase_with_a_reason_and_retried(tmp_path: Path) -> None:
    attempts = 0

    async def refusing_dialer(spec: SessionSpec) -> Conn:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("connection refused")

    shard = await open_shard(tmp_path, dialer=refusing_dialer)
    spec = account(11)
    try:
        shard.manager.ensure(spec)
        await shard.wait_for("three tries", lambda: attempts >= 3)
        status = shard.manager.status(spec.id)
        assert status is not None
        assert status.phase in (Phase.RECONNECTING, Phase.CONNECTING)
        assert status.last_disconnect is not None
        assert "connection refused" in status.last_disconnect.reason
        assert status.reconnects >= 2
    finally:
        await close_shard(shard)


async def test_shutdown_is_bounded_and_restart_resumes(tmp_path: Path) -> None:
    sim = SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    shard = await open_shard(tmp_path, sim=sim)
    specs = [account(20 + n) for n in range(5)]
    for spec in specs:
        await shard.link(spec)
    began = time.monotonic()
    await close_shard(shard)
    assert time.monotonic() - began < 3
    shard = await open_shard(tmp_path, sim=sim)
    try:
        for spec in specs:
            shard.manager.ensure(spec)
        for spec in specs:
            await shard.wait_phase(spec.id, Phase.CONNECTED)
        assert shard.sim.summary()["linking"] == 0, "a new QR was asked for"
        assert all(shard.manager.status(s.id).reconnects == 0 for s in specs)  # type: ignore[union-attr]
    finally:
        await close_shard(shard)


async def test_a_failed_status_write_is_retried_without_a_new_change(tmp_path: Path) -> None:
    """A throttled API server (429 with Retry-After) must not leave the last status unwritten
    until the account's next change: the writer retries on its own."""
    from wafleet.kube.client import TooManyRequests  # noqa: PLC0415

    shard = await open_shard(tmp_path)
    spec = account(12)
    failures = [TooManyRequests(429, "TooManyRequests", "slow down", retry_after=0.2)] * 2
    written: list[Phase] = []
    real = shard.statuses.write_statuses

    async def flaky(statuses: dict[str, object]) -> None:
        phases = [s.phase for s in statuses.values()]  # type: ignore[attr-defined]
        if failures and Phase.CONNECTED in phases:  # the last change: nothing follows it
            raise failures.pop()
        written.extend(s.phase for s in statuses.values())  # type: ignore[attr-defined]
        await real(statuses)  # type: ignore[arg-type]

    shard.statuses.write_statuses = flaky  # type: ignore[method-assign]
    try:
        await shard.link(spec)
        await shard.wait_for(
            "the Connected status written", lambda: Phase.CONNECTED in written, timeout=10
        )
        assert failures == []
        assert shard.statuses.latest[spec.id].phase == Phase.CONNECTED
    finally:
        await close_shard(shard)


async def test_a_stored_suspended_phase_does_not_outlive_a_resume(tmp_path: Path) -> None:
    """A connector resumed the account and crashed before it wrote the new status: the
    restarted one finds spec suspended=False with status Suspended, and must connect (the
    chaos suite caught a fleet that stayed one account short this way)."""
    shard = await open_shard(tmp_path)
    spec = account(9)
    try:
        await shard.link(spec)
        await shard.manager.release(spec.id)  # the crash: the runner goes, the session stays
        stale = AccountStatus(phase=Phase.SUSPENDED, reason="suspended on request")
        shard.manager.ensure(spec, stale)  # the restart, from what the CR still says
        await shard.wait_phase(spec.id, Phase.CONNECTED)
    finally:
        await close_shard(shard)


@pytest.mark.parametrize("login", ["qr", "pairingCode"])
async def test_a_stopping_shard_withdraws_the_codes_it_showed(tmp_path: Path, login: str) -> None:
    """A code shown by a connector that stops dies with its link: the last status it
    writes says so, instead of leaving a code nobody can use on the account."""
    shard = await open_shard(tmp_path)
    spec = account(7, login=login)
    waiting = Phase.QR_READY if login == "qr" else Phase.PAIRING_CODE_READY
    shard.manager.ensure(spec)
    await shard.wait_phase(spec.id, waiting)
    await close_shard(shard)
    last = shard.statuses.latest[spec.id]
    assert last.phase == Phase.PENDING
    assert last.qr is None and last.pairing_code is None
    assert "stopped" in (last.reason or "")
