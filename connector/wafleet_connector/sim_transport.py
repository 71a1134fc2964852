"""The `sim` transport: sessions against the simulated WhatsApp service.

The device credentials live in the account's own sqlite session file (0600),
as neonize keeps its device store, so a restarted connector resumes without a
new scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from wafleet.core.models import parse_iso
from wafleet.sim.service import SimWhatsApp
from wafleet.sim.wire import Conn, ConnClosed, Frame, pipe
from wafleet_connector.transport import (
    FINAL_EVENTS,
    Connected,
    Disconnected,
    EventSink,
    InboundMessage,
    LoggedOut,
    Paired,
    PairingCode,
    QRCode,
    Receipt,
    SendError,
    SessionSpec,
    TemporaryBan,
    TransportEvent,
)

logger = logging.getLogger(__name__)

Dialer = Callable[[], Awaitable[Conn]]
DIAL_TIMEOUT = 10.0
SEND_TIMEOUT = 15.0


# ----- dialers -------------------------------------------------------------------------
class _WebSocketClientConn:
    def __init__(self, ws: ClientConnection) -> None:
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

    async def dial() -> Conn:
        ws = await connect(ws_url + "/sim/ws", open_timeout=DIAL_TIMEOUT, max_size=2**20)
        return _WebSocketClientConn(ws)

    return dial


def local_dialer(sim: SimWhatsApp) -> Dialer:
    """Dial a sim embedded in this process (standalone mode) through an in-memory pipe."""
    serving: set[asyncio.Task[None]] = set()

    async def dial() -> Conn:
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


# ----- sessions ------------------------------------------------------------------------
class SimSession:
    def __init__(self, spec: SessionSpec, sink: EventSink, dialer: Dialer) -> None:
        self.spec = spec
        self._sink = sink
        self._dialer = dialer
        self._conn: Conn | None = None
        self._connected = False
        self._finished = False
        self._stopping = False
        self._next_ref = 0
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._task = asyncio.create_task(self._run(), name=f"sim-session-{spec.account_id}")

    async def _emit(self, event: TransportEvent) -> None:
        if self._finished:
            return
        if isinstance(event, FINAL_EVENTS):
            self._finished = True
        await self._sink(event)

    async def _run(self) -> None:
        try:
            device = await asyncio.to_thread(load_device, self.spec.session_path)
            self._conn = await asyncio.wait_for(self._dialer(), DIAL_TIMEOUT)
            hello: Frame = {"type": "hello", "device": device, "login": self.spec.login}
            if self.spec.login == "pairingCode":
                hello["phone"] = self.spec.phone
            await self._conn.send(hello)
            while (frame := await self._conn.recv()) is not None:
                await self._handle(frame)
                if self._finished:
                    break
        except (OSError, TimeoutError, ConnClosed, WebSocketException) as exc:
            if not self._stopping:
                await self._emit(
                    Disconnected(reason=f"connect_failed: {exc or type(exc).__name__}")
                )
        finally:
            self._connected = False
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(SendError("stream closed during send", reached=True))
            if self._conn is not None:
                await self._conn.close()
        if not self._stopping:
            await self._emit(Disconnected(reason="connection_lost"))

    async def _handle(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "qr":
            expires = parse_iso(frame.get("expiresAt")) or datetime.now(UTC)
            await self._emit(QRCode(code=str(frame["code"]), expires_at=expires))
        elif kind == "pairing_code":
            await self._emit(PairingCode(code=str(frame["code"])))
        elif kind == "paired":
            jid = str(frame["jid"])
            await asyncio.to_thread(save_device, self.spec.session_path, frame["device"], jid)
            await self._emit(Paired(jid=jid))
        elif kind == "connected":
            self._connected = True
            await self._emit(Connected(jid=str(frame["jid"])))
        elif kind == "message":
            await self._inbound(frame)
        elif kind in ("sent", "send_error"):
            waiter = self._waiting.pop(str(frame.get("ref")), None)
            if waiter is not None and not waiter.done():
                if kind == "sent":
                    waiter.set_result(str(frame["id"]))
                else:
                    waiter.set_exception(SendError(str(frame.get("error")), reached=False))
        elif kind == "receipt":
            await self._emit(Receipt(wa_id=str(frame["id"]), status=str(frame["status"])))
        elif kind == "logged_out":
            code = frame.get("code")
            await self._emit(LoggedOut(reason=str(frame.get("reason")), code=code))
        elif kind == "stream_replaced":
            await self._emit(Disconnected(reason="stream_replaced", code=440))
        elif kind == "temp_ban":
            await self._emit(
                TemporaryBan(reason="temp_ban", retry_after=float(frame.get("retryAfter", 60)))
            )

    async def _inbound(self, frame: Frame) -> None:
        message = InboundMessage(
            wa_id=str(frame["id"]),
            chat_jid=str(frame["from"]),
            sender_jid=str(frame["from"]),
            text=str(frame.get("text", "")),
            timestamp=parse_iso(frame.get("ts")) or datetime.now(UTC),
        )
        try:
            await self._sink(message)
        except Exception:
            # Not acknowledged: WhatsApp keeps it and redelivers on the next connection.
            logger.exception("inbound message not stored; left unacknowledged")
            return
        if self._conn is not None:
            with contextlib.suppress(ConnClosed):
                await self._conn.send({"type": "ack", "id": message.wa_id})

    async def send_text(self, to_jid: str, text: str) -> str:
        if not self._connected or self._conn is None:
            raise SendError("not connected", reached=False)
        self._next_ref += 1
        ref = str(self._next_ref)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = waiter
        try:
            await self._conn.send({"type": "send", "ref": ref, "to": to_jid, "text": text})
        except ConnClosed:
            self._waiting.pop(ref, None)
            raise SendError("stream closed before the send", reached=False) from None
        try:
            return await asyncio.wait_for(waiter, SEND_TIMEOUT)
        except TimeoutError:
            raise SendError("no answer from WhatsApp after the send", reached=True) from None
        finally:
            self._waiting.pop(ref, None)

    async def logout(self) -> None:
        if self._conn is not None and self._connected:
            with contextlib.suppress(ConnClosed):
                await self._conn.send({"type": "logout"})
        await self.stop()

    async def stop(self) -> None:
        self._stopping = True
        self._finished = True
        if self._conn is not None:
            await self._conn.close()
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


class SimTransport:
    name = "sim"

    def __init__(self, dialer: Dialer) -> None:
        self._dialer = dialer

    async def open(self, spec: SessionSpec, sink: EventSink) -> SimSession:
        return SimSession(spec, sink, self._dialer)

    async def close(self) -> None:
        return None
