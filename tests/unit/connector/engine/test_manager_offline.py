"""The session manager over the real neonize transport, offline: failures become phases."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from support.shard import Statuses, account, manager_config
from wafleet.core.phases import Phase
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport
from wafleet_connector.manager import SessionManager

pytestmark = pytest.mark.neonize


async def test_offline_connect_failure_is_reported_and_retried_with_backoff(
    tmp_path: Path,
) -> None:
    store = await SqliteMessageStore(tmp_path / "messages.db").open()
    transport = NeonizeTransport(NeonizeConfig(max_sessions=4, stop_timeout=1.0))
    manager = SessionManager(
        manager_config(tmp_path, backoff_base=0.2, backoff_max=0.4), transport, store, Statuses()
    )
    await manager.start()
    spec = account(1)
    try:
        manager.ensure(spec)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = manager.status(spec.id)
            if status is not None and status.reconnects >= 3:
                break
            await asyncio.sleep(0.05)
        status = manager.status(spec.id)
        assert status is not None and status.reconnects >= 3, status
        assert status.phase in (Phase.RECONNECTING, Phase.CONNECTING)
        assert status.last_disconnect is not None
        assert status.last_disconnect.reason.startswith("connect_")
        session_file = tmp_path / "sessions" / f"{spec.id}.db"
        assert session_file.stat().st_mode & 0o777 == 0o600
    finally:
        began = time.monotonic()
        await manager.close()
        assert time.monotonic() - began < 5, "stop was not clean within seconds"
        await store.close()
