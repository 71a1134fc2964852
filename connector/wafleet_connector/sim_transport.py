"""The `sim` transport: sessions against the simulated WhatsApp service.

The device credentials live in the account's own sqlite session file (0600),
as neonize keeps its device store, so a restarted connector resumes without a
new scan. Everything else is the shared device-stream client (``frame_client``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect, unix_connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import WebSocketException

from wafleet.sim.service import SimWhatsApp
from wafleet.sim.wire import Conn, ConnClosed, Frame, pipe
from wafleet_connector.frame_client import Dialer, FrameTimeouts, FrameTransport
from wafleet_connector.transport import SessionSpec

DIAL_TIMEOUT = 10.0
MAX_FRAME = 2**20


# ----- dialers -------------------------------------------------------------------------
class WebSocketConn:
    """A ``wafleet.sim.wire.Conn`` over a websockets connection (either end)."""

    def __init__(self, ws: Connection) -> None:
        self._ws = ws

    async def send(self, frame: Frame) -> None:
        try:
            await self._ws.send(json.dumps(frame))
        except WebSocketException as exc:
            raise ConnClosed(str(exc)) from exc

    async def recv(self) -> Frame | None:
        try:
            data = json.loads(await self._ws.recv())
        except (WebSocketException, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def close(self) -> None:
        await self._ws.close()


def websocket_dialer(sim_url: str) -> Dialer:
    """Dial the sim service at ``sim_url`` (http://host:port) over a WebSocket."""
    ws_url = sim_url.rstrip("/").replace("http://", "ws://").replace("https://", "wss://")

    async def dial(spec: SessionSpec) -> Conn:
        try:
            ws = await connect(ws_url + "/sim/ws", open_timeout=DIAL_TIMEOUT, max_size=MAX_FRAME)
        except WebSocketException as exc:
            raise ConnClosed(f"dial failed: {exc}") from exc
        return WebSocketConn(ws)

    return dial


async def unix_dial(path: Path) -> Conn:
    """Dial a device-stream server on a Unix socket (an engine worker)."""
    try:
        ws = await unix_connect(
            str(path), uri="ws://localhost/", open_timeout=DIAL_TIMEOUT, max_size=MAX_FRAME
        )
    except WebSocketException as exc:
        raise ConnClosed(f"dial failed: {exc}") from exc
    return WebSocketConn(ws)


def local_dialer(sim: SimWhatsApp) -> Dialer:
    """Dial a sim embedded in this process (standalone mode) through an in-memory pipe."""
    serving: set[asyncio.Task[None]] = set()

    async def dial(spec: SessionSpec) -> Conn:
        client, server = pipe()
        task = asyncio.create_task(sim.serve(server), name="sim-serve")
        serving.add(task)
        task.add_done_callback(serving.discard)
        return client

    return dial


# ----- the session file ----------------------------------------------------------------
def _open_store(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS device (id TEXT, secret TEXT, jid TEXT)")
    return db


def load_device(path: Path) -> dict[str, str] | None:
    db = _open_store(path)
    try:
        row = db.execute("SELECT id, secret, jid FROM device LIMIT 1").fetchone()
    finally:
        db.close()
    return None if row is None else {"id": row[0], "secret": row[1], "jid": row[2]}


def save_device(path: Path, device: dict[str, Any], jid: str) -> None:
    db = _open_store(path)
    try:
        with db:
            db.execute("DELETE FROM device")
            db.execute(
                "INSERT INTO device (id, secret, jid) VALUES (?, ?, ?)",
                (str(device["id"]), str(device["secret"]), jid),
            )
    finally:
        db.close()


class SimCredentials:
    """The sim's device credentials, kept in the account's session file."""

    async def hello(self, spec: SessionSpec) -> Frame:
        device = await asyncio.to_thread(load_device, spec.session_path)
        hello: Frame = {"type": "hello", "device": device, "login": spec.login}
        hello["phone"] = spec.phone
        return hello

    async def paired(self, spec: SessionSpec, frame: Frame) -> None:
        device = frame.get("device")
        if isinstance(device, dict):
            await asyncio.to_thread(save_device, spec.session_path, device, str(frame["jid"]))


class SimTransport(FrameTransport):
    def __init__(self, dialer: Dialer, timeouts: FrameTimeouts | None = None) -> None:
        super().__init__("sim", dialer, SimCredentials(), timeouts)
