"""A connector shard on an in-process sim, for tests of the session manager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wafleet.backups.base import SessionBackups
from wafleet.core.models import AccountSpec, AccountStatus
from wafleet.core.phases import Phase
from wafleet.sim.service import SimConfig, SimWhatsApp
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.frame_client import Dialer, FrameTimeouts
from wafleet_connector.manager import ManagerConfig, SessionManager
from wafleet_connector.outbox import OutboxConfig
from wafleet_connector.sim_transport import SimTransport, local_dialer


@dataclass
class Statuses:
    """A StatusWriter that keeps the last status written for each account."""

    latest: dict[str, AccountStatus] = field(default_factory=dict)

    async def write_statuses(self, statuses: dict[str, AccountStatus]) -> None:
        self.latest.update(statuses)


class ManagerWaits:
    """Bounded waits on a session manager's account phases (``manager`` set by the user)."""

    manager: SessionManager
    poll: float = 0.01

    def phase(self, account_id: str) -> Phase | None:
        status = self.manager.status(account_id)
        return None if status is None else status.phase

    async def wait_for(self, what: str, check: Callable[[], object], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            await asyncio.sleep(self.poll)
        raise AssertionError(f"timed out waiting for {what}")

    async def wait_phase(self, account_id: str, phase: Phase, timeout: float = 5.0) -> None:
        await self.wait_for(
            f"{account_id} to be {phase} (is {self.phase(account_id)})",
            lambda: self.phase(account_id) == phase,
            timeout,
        )


@dataclass
class Shard(ManagerWaits):
    data_dir: Path
    sim: SimWhatsApp
    store: SqliteMessageStore
    manager: SessionManager
    statuses: Statuses

    async def link(self, spec: AccountSpec) -> None:
        """Start the account and scan its first QR code with the simulated phone."""
        self.manager.ensure(spec)
        await self.wait_phase(spec.id, Phase.QR_READY)
        status = self.manager.status(spec.id)
        assert status is not None and status.qr is not None
        self.sim.scan(status.qr, spec.phone)
        await self.wait_phase(spec.id, Phase.CONNECTED)


def manager_config(data_dir: Path, **changes: object) -> ManagerConfig:
    base: dict[str, object] = {
        "sessions_dir": data_dir / "sessions",
        "journal_path": data_dir / "journal.db",
        "start_rate": 100.0,
        "start_burst": 10,
        "backoff_base": 0.05,
        "backoff_max": 0.2,
        "qr_max_cycles": 6,
        "session_stop_timeout": 2.0,
        "outbox": OutboxConfig(send_rate=100, send_burst=10),
    }
    base.update(changes)
    return ManagerConfig(**base)  # type: ignore[arg-type]


async def open_shard(
    data_dir: Path,
    sim: SimWhatsApp | None = None,
    dialer: Dialer | None = None,
    backups: SessionBackups | None = None,
    **config: object,
) -> Shard:
    sim = sim or SimWhatsApp(SimConfig(qr_first_ttl=5, qr_ttl=5))
    store = await SqliteMessageStore(data_dir / "messages.db").open()
    statuses = Statuses()
    manager = SessionManager(
        manager_config(data_dir, **config),
        SimTransport(dialer or local_dialer(sim), FrameTimeouts(stop=1.0)),
        store,
        statuses,
        backups,
    )
    await manager.start()
    return Shard(data_dir, sim, store, manager, statuses)


async def close_shard(shard: Shard) -> None:
    await shard.manager.close()
    await shard.store.close()


def account(n: int = 1, **changes: object) -> AccountSpec:
    phone = f"+4071200{n:04d}"
    base: dict[str, object] = {"id": f"wa-test{n}", "phone": phone, "name": f"Account {n}"}
    base.update(changes)
    return AccountSpec(**base)  # type: ignore[arg-type]
