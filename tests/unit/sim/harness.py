"""Drive the simulated WhatsApp over in-process pipes, as a device (a client) would.

Every wait is bounded. "Nothing was sent" is checked with a barrier, not a pause: the
client sends a frame the sim answers at once (a send without a recipient), and the
answer must be the next frame. The sim pushes frames on a stream in order and before
its control methods return, so anything pushed earlier would come before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wafleet.sim.service import SimConfig, SimWhatsApp
from wafleet.sim.wire import Conn, Frame, pipe

WAIT = 5.0
PHONE = "+40712000001"
JID = "40712000001@s.whatsapp.net"
OTHER_PHONE = "+40712000002"
OTHER_JID = "40712000002@s.whatsapp.net"
CONTACT = "+40799000001"
CONTACT_JID = "40799000001@s.whatsapp.net"
CONTACT2 = "+40799000002"
CONTACT2_JID = "40799000002@s.whatsapp.net"
QR_HELLO: Frame = {"type": "hello", "device": None, "login": "qr"}
BARRIER = "barrier"


@dataclass
class Client:
    conn: Conn
    task: asyncio.Task[None]

    async def recv(self, timeout: float = WAIT) -> Frame | None:
        return await asyncio.wait_for(self.conn.recv(), timeout)

    async def expect(self, kind: str, timeout: float = WAIT) -> Frame:
        frame = await self.recv(timeout)
        assert frame is not None, f"stream closed while waiting for {kind!r}"
        assert frame["type"] == kind, f"expected {kind!r}, got {frame}"
        return frame

    async def expect_closed(self, timeout: float = WAIT) -> None:
        frame = await self.recv(timeout)
        assert frame is None, f"expected the stream to close, got {frame}"
        await asyncio.wait_for(asyncio.shield(self.task), timeout)

    async def expect_quiet(self) -> None:
        """Nothing is waiting on the stream, and it is still open (a barrier round trip)."""
        await self.send({"type": "send", "ref": BARRIER, "to": None, "text": "x"})
        frame = await self.recv()
        assert frame is not None, "the stream closed"
        assert frame["type"] == "send_error" and frame["ref"] == BARRIER, (
            f"expected no frame, got {frame}"
        )

    async def send(self, frame: Frame) -> None:
        await self.conn.send(frame)

    async def send_text(self, to: str, text: str, ref: str = "r") -> list[Frame]:
        """A device's send and the sim's answer: [sent, receipt] or [send_error]."""
        await self.send({"type": "send", "ref": ref, "to": to, "text": text})
        first = await self.recv()
        assert first is not None and first.get("ref") == ref, f"no answer to {ref}: {first}"
        if first["type"] == "send_error":
            return [first]
        return [first, await self.expect("receipt")]

    async def hang_up(self) -> None:
        """The device goes away; its server side finishes."""
        await self.conn.close()
        await asyncio.wait_for(asyncio.shield(self.task), WAIT)


@dataclass
class Harness:
    sim: SimWhatsApp
    clients: list[Client] = field(default_factory=list)

    async def connect(self, hello: Frame) -> Client:
        client_end, server_end = pipe()
        task = asyncio.create_task(self.sim.serve(server_end), name="sim-serve")
        client = Client(client_end, task)
        self.clients.append(client)
        await client.send(hello)
        return client

    async def resume(self, device: dict[str, Any]) -> Client:
        return await self.connect({"type": "hello", "device": device})

    async def link_by_qr(self, phone: str = PHONE) -> tuple[Client, dict[str, Any]]:
        client = await self.connect(QR_HELLO)
        qr = await client.expect("qr")
        self.sim.scan(qr["code"], phone)
        paired = await client.expect("paired")
        await client.expect("connected")
        return client, paired["device"]

    async def resume_when_allowed(self, device: dict[str, Any]) -> Client:
        """Resume until the sim lets the device connect (a lasting fault ran out)."""
        deadline = time.monotonic() + WAIT
        while True:
            client = await self.resume(device)
            first = await client.recv()
            assert first is not None, "closed without a frame"
            if first["type"] == "connected":
                return client
            await client.expect_closed()
            assert time.monotonic() < deadline, f"still refused: {first}"
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        await self.sim.close()
        for client in self.clients:
            await client.conn.close()
            client.task.cancel()
        for client in self.clients:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(client.task, WAIT)


async def wait_until(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(config: SimConfig) -> AsyncIterator[Harness]:
    harness = Harness(SimWhatsApp(config))
    await harness.sim.start()
    try:
        yield harness
    finally:
        await harness.aclose()


def parse_wall(stamp: str) -> datetime:
    assert stamp.endswith("Z"), stamp
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
