"""The simulated WhatsApp server: devices, QR linking, message delivery, faults.

It behaves like WhatsApp where wafleet depends on it: QR codes rotate and
expire, a simulated phone scans a QR or types a pairing code, one live stream
per device (a new one replaces the old), inbound messages stay pending until
the device acknowledges them and are redelivered on reconnect, and devices
keep their credentials, so a restarted connector resumes without a new scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from wafleet.core.envconfig import EnvReader
from wafleet.core.phones import jid_to_phone, mask_phone, phone_to_jid
from wafleet.sim.persistence import SimSnapshot, load_snapshot, save_snapshot
from wafleet.sim.wire import Conn, ConnClosed, Frame

logger = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"


class SimError(Exception):
    """A control request the sim refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SimConfig:
    qr_first_ttl: float = 60.0  # seconds the first QR code is valid
    qr_ttl: float = 20.0  # seconds each later QR code is valid
    temp_ban_seconds: float = 30.0
    state_path: Path | None = None  # where devices and inboxes survive a restart


@dataclass
class Device:
    id: str
    secret: str
    phone: str
    pending: dict[str, Frame] = field(default_factory=dict)  # unacknowledged inbound

    @property
    def jid(self) -> str:
        return phone_to_jid(self.phone)


@dataclass
class _Link:
    """A connection waiting to be linked by a QR scan or a pairing code."""

    conn: Conn
    login: str
    phone: str | None
    qr: str | None = None
    qr_expires: float = 0.0
    pairing_code: str | None = None
    linked: asyncio.Future[Device] = field(default_factory=asyncio.Future)


def new_message_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


def _wall(at: float) -> str:
    stamp = datetime.now(UTC) + timedelta(seconds=at - time.monotonic())
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64ish(n: int) -> str:
    return secrets.token_urlsafe(n)


class SimWhatsApp:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        snapshot = load_snapshot(self.config.state_path)
        self.devices: dict[str, Device] = {
            d["id"]: Device(d["id"], d["secret"], d["phone"], dict(d["pending"]))
            for d in snapshot.devices
        }
        self.inbox: dict[str, list[Frame]] = snapshot.inbox
        self.bans: dict[str, float] = {}
        self._live: dict[str, Conn] = {}
        self._caught_up: set[str] = set()  # devices whose live stream has had its backlog
        self._links: list[_Link] = []
        self._dirty = asyncio.Event()
        self._saver: asyncio.Task[None] | None = None

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self.config.state_path is not None and self._saver is None:
            self._saver = asyncio.create_task(self._save_loop(), name="sim-saver")

    async def close(self) -> None:
        for conn in list(self._live.values()) + [link.conn for link in self._links]:
            await conn.close()
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        self._save_now()

    def _changed(self) -> None:
        self._dirty.set()

    async def _save_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.05)
            self._dirty.clear()
            self._save_now()

    def _save_now(self) -> None:
        if self.config.state_path is None:
            return
        devices = [
            {"id": d.id, "secret": d.secret, "phone": d.phone, "pending": d.pending}
            for d in self.devices.values()
        ]
        save_snapshot(self.config.state_path, SimSnapshot(devices=devices, inbox=self.inbox))

    # ----- the device stream -----------------------------------------------------------
    async def serve(self, conn: Conn) -> None:
        """Run one device connection until it closes."""
        try:
            hello = await asyncio.wait_for(conn.recv(), HELLO_TIMEOUT)
        except TimeoutError:
            hello = None
        if hello is None or hello.get("type") != "hello":
            await conn.close()
            return
        try:
            device = await self._authenticate(conn, hello)
            if device is not None:
                await self._run_device(conn, device)
        except ConnClosed:
            pass
        finally:
            await conn.close()

    async def _authenticate(self, conn: Conn, hello: Frame) -> Device | None:
        creds = hello.get("device")
        if isinstance(creds, dict):
            device = self.devices.get(str(creds.get("id")))
            if device is None or not secrets.compare_digest(
                device.secret, str(creds.get("secret", ""))
            ):
                await conn.send({"type": "logged_out", "reason": "device_removed", "code": 401})
                return None
            return device
        return await self._link(conn, hello)

    async def _link(self, conn: Conn, hello: Frame) -> Device | None:
        login = "pairingCode" if hello.get("login") == "pairingCode" else "qr"
        phone = hello.get("phone") if login == "pairingCode" else None
        if login == "pairingCode" and not isinstance(phone, str):
            await conn.send({"type": "error", "reason": "pairing-code login needs a phone"})
            return None
        link = _Link(conn=conn, login=login, phone=phone if isinstance(phone, str) else None)
        self._links.append(link)
        rotator = asyncio.create_task(self._show_codes(link), name="sim-link")
        reader: asyncio.Future[Any] = asyncio.ensure_future(self._until_closed(conn))
        try:
            waiting: set[asyncio.Future[Any]] = {link.linked, reader}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if link.linked not in done:
                return None  # the client went away before linking
            device = link.linked.result()
            await conn.send(
                {
                    "type": "paired",
                    "device": {"id": device.id, "secret": device.secret},
                    "jid": device.jid,
                }
            )
            return device
        finally:
            rotator.cancel()
            reader.cancel()
            self._links.remove(link)

    @staticmethod
    async def _until_closed(conn: Conn) -> None:
        """Read (and ignore) what a device sends before it is linked, until it goes away."""
        while await conn.recv() is not None:
            pass

    async def _show_codes(self, link: _Link) -> None:
        if link.login == "pairingCode":
            code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
            link.pairing_code = f"{code[:4]}-{code[4:]}"
            await link.conn.send({"type": "pairing_code", "code": link.pairing_code})
            return
        ttl = self.config.qr_first_ttl
        while True:
            link.qr = f"2@{_b64ish(24)},{_b64ish(32)},{_b64ish(32)},{_b64ish(32)}"
            link.qr_expires = time.monotonic() + ttl
            await link.conn.send(
                {"type": "qr", "code": link.qr, "expiresAt": _wall(link.qr_expires)}
            )
            await asyncio.sleep(ttl)
            ttl = self.config.qr_ttl

    async def _run_device(self, conn: Conn, device: Device) -> None:
        if self._banned_for(device.phone) > 0:
            await conn.send({"type": "temp_ban", "retryAfter": self._banned_for(device.phone)})
            return
        old = self._live.get(device.id)
        self._live[device.id] = conn
        self._caught_up.discard(device.id)
        if old is not None:
            with contextlib.suppress(ConnClosed):
                await old.send({"type": "stream_replaced"})
            await old.close()
        try:
            await conn.send({"type": "connected", "jid": device.jid})
            await self._send_backlog(conn, device)
            while (incoming := await conn.recv()) is not None:
                if not await self._handle(conn, device, incoming):
                    break
        finally:
            if self._live.get(device.id) is conn:
                del self._live[device.id]
                self._caught_up.discard(device.id)

    async def _send_backlog(self, conn: Conn, device: Device) -> None:
        """Redeliver what is unacknowledged; new messages go live only after that."""
        sent: set[str] = set()
        while backlog := [f for key, f in device.pending.items() if key not in sent]:
            for frame in backlog:
                await conn.send(frame)
                sent.add(str(frame["id"]))
        if self._live.get(device.id) is conn:
            self._caught_up.add(device.id)

    async def _handle(self, conn: Conn, device: Device, frame: Frame) -> bool:
        kind = frame.get("type")
        if kind == "ack":
            if device.pending.pop(str(frame.get("id")), None) is not None:
                self._changed()
        elif kind == "send":
            await self._device_send(conn, device, frame)
        elif kind == "logout":
            self._remove_device(device)
            return False
        return True

    async def _device_send(self, conn: Conn, device: Device, frame: Frame) -> None:
        to, text, ref = frame.get("to"), frame.get("text"), frame.get("ref")
        if not isinstance(to, str) or "@" not in to or not isinstance(text, str):
            await conn.send({"type": "send_error", "ref": ref, "error": "bad send frame"})
            return
        message_id = new_message_id()
        entry = {
            "id": message_id,
            "from": device.phone,
            "to": jid_to_phone(to),
            "text": text,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        self.inbox.setdefault(entry["to"], []).append(entry)
        self._changed()
        await conn.send({"type": "sent", "ref": ref, "id": message_id})
        await conn.send({"type": "receipt", "id": message_id, "status": "delivered"})

    def _remove_device(self, device: Device) -> None:
        self.devices.pop(device.id, None)
        self._changed()
        logger.info("sim device removed", extra={"phone": mask_phone(device.phone)})

    def _banned_for(self, phone: str) -> float:
        return max(0.0, self.bans.get(phone, 0.0) - time.monotonic())

    # ----- the simulated phones (control API) -----------------------------------------
    def _new_device(self, phone: str) -> Device:
        device = Device(id=secrets.token_hex(8), secret=secrets.token_urlsafe(24), phone=phone)
        self.devices[device.id] = device
        self._changed()
        return device

    def scan(self, qr: str, phone: str) -> Device:
        now = time.monotonic()
        for link in self._links:
            if link.qr is not None and secrets.compare_digest(link.qr, qr):
                if now >= link.qr_expires or link.linked.done():
                    break
                device = self._new_device(phone)
                link.linked.set_result(device)
                return device
        raise SimError(404, "qr_not_found", "no device is showing this QR code (expired or wrong)")

    def pair(self, code: str, phone: str) -> Device:
        letters = "".join(ch for ch in code.upper() if ch.isalnum())
        wanted = f"{letters[:4]}-{letters[4:]}"
        for link in self._links:
            if link.pairing_code == wanted and not link.linked.done():
                if link.phone != phone:
                    raise SimError(
                        409, "wrong_phone", "this pairing code was asked for another phone"
                    )
                device = self._new_device(phone)
                link.linked.set_result(device)
                return device
        raise SimError(404, "code_not_found", "no device is showing this pairing code")

    def devices_of(self, phone: str) -> list[Device]:
        return [d for d in self.devices.values() if d.phone == phone]

    async def deliver(self, sender: str, to: str, text: str) -> str:
        targets = self.devices_of(to)
        if not targets:
            raise SimError(404, "not_linked", f"no device is linked to {mask_phone(to)}")
        message_id = new_message_id()
        frame: Frame = {
            "type": "message",
            "id": message_id,
            "from": phone_to_jid(sender),
            "text": text,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        for device in targets:
            device.pending[message_id] = frame
            conn = self._live.get(device.id)
            if conn is not None and device.id in self._caught_up:
                with contextlib.suppress(ConnClosed):
                    await conn.send(frame)
        self._changed()
        return message_id

    def received(self, phone: str) -> list[Frame]:
        return list(self.inbox.get(phone, []))

    async def fault(self, phone: str, kind: str, seconds: float | None = None) -> int:
        targets = self.devices_of(phone)
        if not targets:
            raise SimError(404, "not_linked", f"no device is linked to {mask_phone(phone)}")
        if kind == "temp_ban":
            self.bans[phone] = time.monotonic() + (seconds or self.config.temp_ban_seconds)
        for device in targets:
            await self._apply_fault(device, kind)
        return len(targets)

    async def _apply_fault(self, device: Device, kind: str) -> None:
        conn = self._live.get(device.id)
        frames: dict[str, Frame] = {
            "logout": {"type": "logged_out", "reason": "logged_out_from_phone", "code": 401},
            "stream_replaced": {"type": "stream_replaced"},
            "temp_ban": {"type": "temp_ban", "retryAfter": self._banned_for(device.phone)},
        }
        if kind == "logout":
            self._remove_device(device)
        if conn is None:
            return
        if kind in frames:
            with contextlib.suppress(ConnClosed):
                await conn.send(frames[kind])
        await conn.close()

    def summary(self) -> dict[str, Any]:
        return {
            "devices": len(self.devices),
            "live": len(self._live),
            "linking": len(self._links),
            "pendingMessages": sum(len(d.pending) for d in self.devices.values()),
        }

    def live_phones(self) -> Iterable[str]:
        return {self.devices[i].phone for i in self._live if i in self.devices}


def sim_config_from_env(
    env: dict[str, str] | None = None, state_path: Path | None = None
) -> SimConfig:
    """The sim's own settings: WAFLEET_SIM_QR_FIRST_TTL, _QR_TTL, _TEMP_BAN_SECONDS."""
    read = EnvReader(dict(os.environ) if env is None else env, prefix="WAFLEET_SIM_")
    return SimConfig(
        qr_first_ttl=read.number("QR_FIRST_TTL", 60.0, minimum=0.05, maximum=3600),
        qr_ttl=read.number("QR_TTL", 20.0, minimum=0.05, maximum=3600),
        temp_ban_seconds=read.number("TEMP_BAN_SECONDS", 30.0, minimum=0.1, maximum=86400),
        state_path=state_path,
    )
