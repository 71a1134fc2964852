"""The simulated WhatsApp server: devices, QR linking, message delivery, faults.

It behaves like WhatsApp where wafleet depends on it: QR codes rotate and
expire, a simulated phone scans a QR or types a pairing code (or asks for a
passkey instead, which links nothing), one live stream
per device (a new one replaces the old), inbound messages stay pending until
the device acknowledges them and are redelivered on reconnect, and devices
keep their credentials, so a restarted connector resumes without a new scan.
The frames are those of ``wafleet.sim.wire``; the parts live in ``linking``,
``streams``, ``messaging``, ``faults``, ``lids`` and ``persistence``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wafleet.core.envconfig import EnvReader
from wafleet.core.phones import mask_phone
from wafleet.sim.faults import FAULT_KINDS, FaultInjector, FaultTimers
from wafleet.sim.lids import LidDirectory
from wafleet.sim.linking import PAIRING_ALPHABET, BadHello, Linker, link_request
from wafleet.sim.messaging import Messenger
from wafleet.sim.model import Device, SimConfig, SimError, Stream, new_message_id
from wafleet.sim.persistence import SimSnapshot, StateSaver, load_snapshot
from wafleet.sim.streams import Streams
from wafleet.sim.wire import Conn, ConnClosed, Frame

__all__ = [
    "PAIRING_ALPHABET",
    "Device",
    "SimConfig",
    "SimError",
    "SimWhatsApp",
    "new_message_id",
    "sim_config_from_env",
]

logger = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0
LOGGED_OUT: Frame = {"type": "logged_out", "reason": "logout", "code": 401}
DEVICE_REMOVED: Frame = {"type": "logged_out", "reason": "device_removed", "code": 401}
LOGOUT_FAILED = "WhatsApp did not confirm the unlink; the device is still linked"


class SimWhatsApp:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        snapshot = load_snapshot(self.config.state_path)
        self.devices: dict[str, Device] = {
            d["id"]: Device(d["id"], d["secret"], d["phone"], d["pending"], d["receipts"])
            for d in snapshot.devices
        }
        self.inbox: dict[str, list[Frame]] = snapshot.inbox
        known = [*snapshot.contacts, *(d.phone for d in self.devices.values()), *self.inbox]
        self._saver = StateSaver(self.config.state_path, self._snapshot)
        self._streams = Streams(self._saver.changed)
        self.replacements = 0  # live streams replaced by a second client of the same device
        self._linker = Linker(self.config)
        self._timers = FaultTimers(self.config)
        self.bans = self._timers.bans
        self._messenger = Messenger(
            devices_of=self.devices_of,
            streams=self._streams,
            lids=LidDirectory(known),
            inbox=self.inbox,
            unregistered=set(snapshot.unregistered),
            changed=self._saver.changed,
        )
        self._faults = FaultInjector(self._timers, self._streams, self._remove_device)
        self.passkey_phones: set[str] = set(snapshot.passkey)  # phones that ask for one

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._saver.start()

    async def close(self) -> None:
        await self._streams.close_all()
        for link in list(self._linker.links):
            await link.conn.close()
        await self._saver.close()

    def _snapshot(self) -> SimSnapshot:
        devices = [
            {
                "id": d.id,
                "secret": d.secret,
                "phone": d.phone,
                "pending": d.pending,
                "receipts": d.receipts,
            }
            for d in self.devices.values()
        ]
        return SimSnapshot(
            devices=devices,
            inbox=self.inbox,
            unregistered=sorted(self._messenger.unregistered),
            contacts=self._messenger.lids.phones(),
            passkey=sorted(self.passkey_phones),
        )

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
        if creds is None:
            return await self._link(conn, hello)
        if not isinstance(creds, dict):
            await conn.send({"type": "error", "reason": "hello 'device' must be an object or null"})
            return None
        device = self.devices.get(str(creds.get("id")))
        secret = creds.get("secret")
        if (
            device is None
            or not isinstance(secret, str)
            or not secrets.compare_digest(
                device.secret.encode(), secret.encode("utf-8", "surrogatepass")
            )
        ):
            await conn.send(dict(DEVICE_REMOVED))
            return None
        return device

    async def _link(self, conn: Conn, hello: Frame) -> Device | None:
        try:
            login, phone = link_request(hello)
        except BadHello as exc:
            await conn.send({"type": "error", "reason": str(exc)})
            return None
        result = await self._linker.link(conn, login, phone)
        device = result.device
        if result.gone:
            return None  # the client went away (a device linked meanwhile stays linked)
        if device is not None:
            paired = {"id": device.id, "secret": device.secret}
            await conn.send({"type": "paired", "device": paired, "jid": device.jid})
        if result.ended_by == "stop":
            await conn.send({"type": "stopped"})
            return None
        if result.ended_by == "logout":
            if device is not None:
                self._remove_device(device)
            await conn.send(dict(LOGGED_OUT))  # nothing is linked any more
            return None
        return device

    async def _run_device(self, conn: Conn, device: Device) -> None:
        if self._timers.unresponsive(device.phone):
            while await conn.recv() is not None:
                pass  # accepted, never answered: only the client's connect timeout ends it
            return
        refusal = self._timers.refusal(device.phone)
        if refusal is not None:
            await conn.send(refusal)  # temp_ban, or client_outdated (whatsmeow's 405)
            return
        stream, old = self._streams.attach(conn, device)
        if old is not None:
            # Two clients drove one device: what a connector must never cause (counted).
            self.replacements += 1
            with contextlib.suppress(ConnClosed):
                await old.conn.send({"type": "stream_replaced"})
            await old.conn.close()
        try:
            await conn.send({"type": "connected", "jid": device.jid})
            await self._streams.catch_up(stream)
            while (incoming := await conn.recv()) is not None:
                if not await self._handle(stream, incoming):
                    break
        finally:
            self._streams.detach(stream)

    async def _handle(self, stream: Stream, frame: Frame) -> bool:
        """Answer one frame from a device; False once the stream is to close."""
        device, kind = stream.device, frame.get("type")
        if kind == "ack":
            if device.pending.pop(str(frame.get("id")), None) is not None:
                self._saver.changed()
        elif kind == "send":
            for reply in await self._messenger.device_send(device, frame):
                await stream.conn.send(reply)
        elif kind == "logout":
            return await self._logout(stream)
        elif kind == "stop":
            self._streams.detach(stream)  # nothing more is pushed; pending stays pending
            await stream.conn.send({"type": "stopped"})
            return False
        else:
            logger.debug("sim ignores a frame", extra={"frame_type": str(kind)[:32]})
        return True

    async def _logout(self, stream: Stream) -> bool:
        if self._timers.logout_refused(stream.device.phone):
            await stream.conn.send({"type": "logout_failed", "error": LOGOUT_FAILED})
            return True
        self._streams.detach(stream)
        self._remove_device(stream.device)
        await stream.conn.send(dict(LOGGED_OUT))
        return False

    def _remove_device(self, device: Device) -> None:
        self.devices.pop(device.id, None)
        self._saver.changed()
        logger.info("sim device removed", extra={"phone": mask_phone(device.phone)})

    # ----- the simulated phones (control API) -----------------------------------------
    def _new_device(self, phone: str) -> Device:
        device = Device(id=secrets.token_hex(8), secret=secrets.token_urlsafe(24), phone=phone)
        self.devices[device.id] = device
        self._messenger.lids.remember(phone)
        self._saver.changed()
        return device

    def scan(self, qr: str, phone: str) -> Device:
        """``phone`` scans ``qr``: the device showing it is linked to ``phone`` (or, if the
        phone asks for a passkey, sent a passkey request: SimError ``passkey_required``)."""
        self._messenger.require_registered(phone)
        return self._linker.scan(qr, phone, self._new_device, self.requires_passkey(phone))

    def pair(self, code: str, phone: str) -> Device:
        self._messenger.require_registered(phone)
        return self._linker.pair(code, phone, self._new_device, self.requires_passkey(phone))

    def set_passkey(self, phone: str, required: bool) -> None:
        """Make ``phone`` ask for a passkey whenever it links a device (or stop asking).
        Devices it already linked are asked nothing."""
        if required:
            self.passkey_phones.add(phone)
        else:
            self.passkey_phones.discard(phone)
        self._saver.changed()
        logger.info("sim passkey", extra={"phone": mask_phone(phone), "required": required})

    def requires_passkey(self, phone: str) -> bool:
        return phone in self.passkey_phones

    def devices_of(self, phone: str) -> list[Device]:
        return [d for d in self.devices.values() if d.phone == phone]

    async def deliver(self, sender: str, to: str, text: str, addressing: str = "pn") -> str:
        return await self._messenger.deliver(sender, to, text, addressing)

    def received(self, phone: str) -> list[Frame]:
        return list(self.inbox.get(phone, []))

    async def read(self, reader: str, sender: str | None = None) -> int:
        """``reader`` reads what it received (from ``sender`` only, if given)."""
        self._messenger.require_registered(reader)
        return await self._messenger.mark_read(reader, sender)

    def lid(self, phone: str) -> str:
        return self._messenger.lid_of(phone)

    def set_registered(self, phone: str, registered: bool) -> None:
        self._messenger.set_registered(phone, registered)

    def is_registered(self, phone: str) -> bool:
        return self._messenger.is_registered(phone)

    async def fault(self, phone: str, kind: str, seconds: float | None = None) -> int:
        if kind not in FAULT_KINDS:
            raise SimError(400, "invalid_field", f"unknown fault kind {kind[:32]!r}")
        targets = self.devices_of(phone)
        if not targets:
            raise SimError(404, "not_linked", f"no device is linked to {mask_phone(phone)}")
        self._timers.arm(kind, phone, seconds)
        for device in targets:
            await self._faults.apply(device, kind)
        logger.info("sim fault", extra={"phone": mask_phone(phone), "kind": kind})
        return len(targets)

    def summary(self) -> dict[str, Any]:
        return {
            "devices": len(self.devices),
            "live": len(self._streams.live),
            "linking": len(self._linker.links),
            "pendingMessages": sum(len(d.pending) for d in self.devices.values()),
            "replacements": self.replacements,
        }

    def live_phones(self) -> Iterable[str]:
        live = self._streams.live
        return {self.devices[i].phone for i in live if i in self.devices}


def sim_config_from_env(
    env: dict[str, str] | None = None, state_path: Path | None = None
) -> SimConfig:
    """The sim's own settings: WAFLEET_SIM_QR_FIRST_TTL, _QR_TTL, _TEMP_BAN_SECONDS,
    _CLIENT_OUTDATED_SECONDS, _LOGOUT_FAILS_SECONDS."""
    read = EnvReader(dict(os.environ) if env is None else env, prefix="WAFLEET_SIM_")
    return SimConfig(
        qr_first_ttl=read.number("QR_FIRST_TTL", 60.0, minimum=0.05, maximum=3600),
        qr_ttl=read.number("QR_TTL", 20.0, minimum=0.05, maximum=3600),
        temp_ban_seconds=read.number("TEMP_BAN_SECONDS", 30.0, minimum=0.1, maximum=86400),
        client_outdated_seconds=read.number(
            "CLIENT_OUTDATED_SECONDS", 60.0, minimum=0.1, maximum=86400
        ),
        logout_fails_seconds=read.number("LOGOUT_FAILS_SECONDS", 60.0, minimum=0.1, maximum=86400),
        state_path=state_path,
    )
