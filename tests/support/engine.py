"""A connector shard on engine workers running the strict fake Go library against a sim.

The shard's session manager runs in the test's process (as in a connector), its neonize
sessions in real worker processes (``wafleet_connector.engine.worker``) whose Go library
is ``support.fake_go`` talking to a ``wafleet sim`` process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.shard import ManagerWaits, Statuses, manager_config
from wafleet.core.models import AccountSpec, AccountStatus
from wafleet.core.phases import Phase
from wafleet.stores.sqlite_messages import SqliteMessageStore
from wafleet_connector.engine.client import EngineTransport
from wafleet_connector.engine.supervisor import EngineConfig
from wafleet_connector.frame_client import FrameTimeouts
from wafleet_connector.manager import SessionManager
from wafleet_connector.pacing import Backoff

TESTS_DIR = Path(__file__).resolve().parent.parent
FAKE_LIBRARY = "support.fake_go:load_from_env"


@dataclass
class History:
    """Every status every runner reported, in order (before the writer's debounce)."""

    phases: dict[str, list[Phase]] = field(default_factory=dict)

    def __call__(self, account_id: str, status: AccountStatus) -> None:
        seen = self.phases.setdefault(account_id, [])
        if not seen or seen[-1] != status.phase:
            seen.append(status.phase)


@dataclass
class EngineShard(ManagerWaits):
    data_dir: Path
    sim_url: str
    sim: httpx.AsyncClient
    store: SqliteMessageStore
    manager: SessionManager
    transport: EngineTransport
    history: History

    async def wait_for(self, what: str, check: Callable[[], object], timeout: float = 30) -> None:
        await super().wait_for(what, check, timeout)  # worker processes: longer waits

    async def wait_phase(self, account_id: str, phase: Phase, timeout: float = 30) -> None:
        await super().wait_phase(account_id, phase, timeout)

    async def link(self, spec: AccountSpec) -> None:
        """Start the account and scan its QR code with its own simulated phone."""
        self.manager.ensure(spec)
        await self.wait_phase(spec.id, Phase.QR_READY)
        status = self.manager.status(spec.id)
        assert status is not None and status.qr is not None
        scanned = await self.sim.post("/sim/scan", json={"qr": status.qr, "phone": spec.phone})
        assert scanned.status_code == 200, scanned.text
        await self.wait_phase(spec.id, Phase.CONNECTED)

    def worker_pid(self, account_id: str) -> int:
        pid = self.transport.supervisor.pid_of(account_id)
        assert pid is not None, f"{account_id} runs in no worker"
        return pid

    async def devices(self, phone: str) -> int:
        response = await self.sim.get("/sim/devices", params={"phone": phone})
        response.raise_for_status()
        return len(response.json()["devices"])


def engine_config(data_dir: Path, sim_url: str, **changes: object) -> EngineConfig:
    base: dict[str, object] = {
        "sessions_per_worker": 2,
        "library": FAKE_LIBRARY,
        "sessions_dir": data_dir / "sessions",
        "restart": Backoff(base=0.2, cap=1.0),
        "stop_timeout": 1.5,
        "neonize": {"stop_timeout": 1.0, "drain_quiet": 0.1},
        "env": {"PYTHONPATH": str(TESTS_DIR), "WAFLEET_FAKE_GO_SIM_URL": sim_url},
    }
    base.update(changes)
    return EngineConfig(**base)  # type: ignore[arg-type]


async def open_engine_shard(
    data_dir: Path, sim_url: str, engine: EngineConfig | None = None, **config: object
) -> EngineShard:
    store = await SqliteMessageStore(data_dir / "messages.db").open()
    transport = EngineTransport(
        engine or engine_config(data_dir, sim_url), FrameTimeouts(stop=2.0, logout=5.0)
    )
    history = History()
    manager = SessionManager(
        manager_config(data_dir, session_stop_timeout=3.0, **config),
        transport,
        store,
        Statuses(),
    )
    manager.on_status = history
    await manager.start()
    sim = httpx.AsyncClient(base_url=sim_url, timeout=10)
    return EngineShard(data_dir, sim_url, sim, store, manager, transport, history)


async def close_engine_shard(shard: EngineShard) -> None:
    await shard.manager.close()
    await shard.store.close()
    await shard.sim.aclose()
