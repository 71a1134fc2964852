"""Shared pieces of the engine tests: a recording sink, specs, the fake engine rig."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unit.connector.engine.stubsim import StubConn, StubSim

from support.fake_go import FakeGoLibrary, FakeGoTiming
from wafleet_connector.engine.ffi import NeonizeFfi
from wafleet_connector.engine.inprocess import NeonizeConfig, NeonizeTransport
from wafleet_connector.engine.session import NeonizeSession
from wafleet_connector.transport import Connected, InboundMessage, SessionSpec, TransportEvent

PHONE = "+40711111111"
OWN = "40711111111@s.whatsapp.net"
CONTACT = "40722222222@s.whatsapp.net"
REPO = Path(__file__).resolve().parents[4]


def spec(tmp_path: Path, account: str = "acc1", login: str = "qr") -> SessionSpec:
    return SessionSpec(
        account_id=account,
        phone=PHONE,
        login=login,  # type: ignore[arg-type]
        session_path=tmp_path / "sessions" / account / "session.db",
    )


class Recorder:
    """A sink that records every event (optionally slowly, for inbound messages)."""

    def __init__(self, inbound_delay: float = 0.0) -> None:
        self.events: list[TransportEvent] = []
        self.changed = asyncio.Event()
        self.inbound_delay = inbound_delay

    async def __call__(self, event: TransportEvent) -> None:
        if isinstance(event, InboundMessage) and self.inbound_delay:
            await asyncio.sleep(self.inbound_delay)
        self.events.append(event)
        self.changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def kinds(self, *, inbound: bool = False) -> list[type]:
        return [type(e) for e in self.events if inbound or not isinstance(e, InboundMessage)]

    async def wait_for(self, kind: type, count: int = 1, timeout: float = 15.0) -> Any:
        async def poll() -> Any:
            while True:
                found = self.of(kind)
                if len(found) >= count:
                    return found[count - 1]
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(poll(), timeout)


async def until(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``probe`` (cheap, no I/O) until it is truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    """The neonize transport on the strict fake Go library, served by a stub sim."""

    stub: StubSim
    lib: FakeGoLibrary
    core: NeonizeFfi
    transport: NeonizeTransport
    tmp_path: Path

    async def open(
        self, sink: Any, account: str = "acc1", login: str = "qr"
    ) -> tuple[NeonizeSession, StubConn]:
        session = await self.transport.open(spec(self.tmp_path, account, login), sink)
        return session, await self.stub.aaccept()

    async def linked(self, rec: Recorder, account: str = "acc1") -> tuple[NeonizeSession, StubConn]:
        """A session of a freshly linked device: QR shown, paired, connected."""
        session, conn = await self.open(rec, account)
        conn.send({"type": "qr", "code": "2@one", "expiresAt": "2099-01-01T00:00:00.000Z"})
        conn.send({"type": "paired", "jid": OWN, "device": {"id": "d1", "secret": "s1"}})
        conn.send({"type": "connected", "jid": OWN})
        await rec.wait_for(Connected)
        return session, conn

    def uuid_of(self, session: NeonizeSession) -> bytes:
        return session._uuid


def make_rig(tmp_path: Path, stub: StubSim, timing: FakeGoTiming | None = None, **cfg: Any) -> Rig:
    lib = FakeGoLibrary(stub.url, timing=timing)
    core = NeonizeFfi(lib=lib)
    defaults: dict[str, Any] = {"max_sessions": 8, "stop_timeout": 5.0}
    transport = NeonizeTransport(NeonizeConfig(**{**defaults, **cfg}), core=core)
    return Rig(stub=stub, lib=lib, core=core, transport=transport, tmp_path=tmp_path)


def subprocess_env() -> dict[str, str]:
    paths = [str(REPO / "tests"), str(REPO / "connector"), str(REPO)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


PYTHON = sys.executable
