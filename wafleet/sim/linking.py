"""Linking a new device: rotating QR codes, pairing codes, and the phone that accepts them.

As on WhatsApp, the phone that scans a QR code is the one the device is linked to,
whichever phone the client meant: the "paired" frame carries the scanner's jid. A
pairing code, though, is asked for one phone and is refused on any other.

A phone that asks for a passkey (``SimWhatsApp.set_passkey``) links nothing: the device is
sent a "passkey_request" frame (WhatsApp's passkey_prologue_request notification) and the
phone's scan or code is answered 409 ``passkey_required``. As with whatsmeow, which
replaces the secret its QR codes carry when the request comes, the device keeps showing
codes but none of them links it any more (409 ``passkey_pending``), whoever scans; nor
does its pairing code. Only a new link (a new connection) can be linked.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wafleet.core.phones import InvalidPhone, normalize_phone
from wafleet.sim.model import Device, SimConfig, SimError, wall_stamp
from wafleet.sim.wire import Conn, ConnClosed, Frame

PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTVWXYZ23456789"
LOGINS = ("qr", "pairingCode")
END_FRAMES = ("stop", "logout")

NewDevice = Callable[[str], Device]
PASSKEY_REQUEST: Frame = {"type": "passkey_request"}


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
    passkey_asked: bool = False  # a passkey was asked: nothing links this device any more
    notices: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)  # for the device


@dataclass(frozen=True)
class LinkResult:
    device: Device | None  # linked by a phone, or None
    ended_by: str | None = None  # "stop" or "logout" when the client ended the link
    gone: bool = False  # the client closed the stream


class BadHello(Exception):
    """A hello the sim cannot start a link from; the message goes in an "error" frame."""


def _b64ish(n: int) -> str:
    return secrets.token_urlsafe(n)


def _same_text(a: str, b: str) -> bool:
    """A constant-time comparison of any two strings (compare_digest wants ASCII str)."""
    return secrets.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )


def link_request(hello: Frame) -> tuple[str, str | None]:
    """The login kind and (for a pairing code) the phone of a hello without credentials."""
    login = hello.get("login") or "qr"
    if login not in LOGINS:
        raise BadHello(f"unknown login {str(login)[:20]!r}; use 'qr' or 'pairingCode'")
    if login == "qr":
        return login, None
    try:
        return login, normalize_phone(hello.get("phone"))
    except InvalidPhone:
        raise BadHello("pairing-code login needs a valid phone") from None


class Linker:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.links: list[_Link] = []

    async def link(self, conn: Conn, login: str, phone: str | None) -> LinkResult:
        """Show codes on ``conn`` until a phone accepts one, or the client ends or leaves."""
        link = _Link(conn=conn, login=login, phone=phone)
        self.links.append(link)
        rotator = asyncio.create_task(self._show_codes(link), name="sim-link")
        notifier = asyncio.create_task(_send_notices(link), name="sim-link-notices")
        reader: asyncio.Future[str | None] = asyncio.ensure_future(_read_until_end(conn))
        try:
            waiting: set[asyncio.Future[Any]] = {link.linked, reader}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            device = link.linked.result() if link.linked.done() else None
            if not reader.done():
                return LinkResult(device=device)
            ended_by = None if reader.exception() is not None else reader.result()
            return LinkResult(device=device, ended_by=ended_by, gone=ended_by is None)
        finally:
            rotator.cancel()
            notifier.cancel()
            reader.cancel()
            self.links.remove(link)

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
                {"type": "qr", "code": link.qr, "expiresAt": wall_stamp(link.qr_expires)}
            )
            await asyncio.sleep(ttl)
            ttl = self.config.qr_ttl

    def scan(self, qr: str, phone: str, new_device: NewDevice, passkey: bool = False) -> Device:
        """Link the device showing ``qr`` to ``phone``, the phone that scanned it;
        ``passkey``: the phone asks for a passkey instead (see the module docstring)."""
        now = time.monotonic()
        for link in self.links:
            if link.qr is not None and _same_text(link.qr, qr):
                if now >= link.qr_expires or link.linked.done():
                    break
                return self._accept(link, phone, new_device, passkey)
        raise SimError(404, "qr_not_found", "no device is showing this QR code (expired or wrong)")

    def pair(self, code: str, phone: str, new_device: NewDevice, passkey: bool = False) -> Device:
        letters = "".join(ch for ch in code.upper() if ch.isalnum())
        wanted = f"{letters[:4]}-{letters[4:]}"
        for link in self.links:
            if link.pairing_code == wanted and not link.linked.done():
                if link.phone != phone:
                    raise SimError(
                        409, "wrong_phone", "this pairing code was asked for another phone"
                    )
                return self._accept(link, phone, new_device, passkey)
        raise SimError(404, "code_not_found", "no device is showing this pairing code")

    def _accept(self, link: _Link, phone: str, new_device: NewDevice, passkey: bool) -> Device:
        """The phone accepted the link's code: link it, or ask its device for a passkey."""
        if link.passkey_asked:
            raise SimError(
                409,
                "passkey_pending",
                "this device was asked for a passkey; its codes no longer link it "
                "(a new connection shows new ones)",
            )
        if passkey:
            link.passkey_asked = True
            link.notices.put_nowait(dict(PASSKEY_REQUEST))
            raise SimError(
                409,
                "passkey_required",
                "this phone asks for a passkey to link a device; the device was sent a "
                "passkey request and is not linked",
            )
        device = new_device(phone)
        link.linked.set_result(device)
        return device


async def _send_notices(link: _Link) -> None:
    """Send what the phone's answer told the device (a passkey request), in order."""
    with contextlib.suppress(ConnClosed):
        while True:
            await link.conn.send(await link.notices.get())


async def _read_until_end(conn: Conn) -> str | None:
    """Read what a device sends before it is linked: "stop" or "logout" (returned) end
    the link; a "send" is refused (nothing is linked to send from); None once it closes."""
    while (frame := await conn.recv()) is not None:
        kind = frame.get("type")
        if kind in END_FRAMES:
            return str(kind)
        if kind == "send":
            refusal = {"type": "send_error", "ref": frame.get("ref"), "error": "not connected"}
            await conn.send({**refusal, "reached": False})
    return None
