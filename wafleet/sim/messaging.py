"""Messages between the simulated phones and the linked devices, and their receipts.

Inbound (a simulated contact writes to an account) the message stays pending on each
of the account's devices until acknowledged. Outbound (a device sends) it lands in the
recipient phone's inbox, answered by "sent" and a "delivered" receipt; when the
recipient reads it, a "read" receipt goes to the sender's devices, now or, for a
device that is away, after the backlog of its next connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wafleet.core.phones import mask_phone, phone_to_jid
from wafleet.sim.lids import LidDirectory, lid_jid, parse_target, phone_of_pn_user
from wafleet.sim.model import (
    MAX_TEXT,
    Device,
    SimError,
    is_unicode_text,
    new_message_id,
    utc_stamp,
)
from wafleet.sim.streams import Streams
from wafleet.sim.wire import Frame

logger = logging.getLogger(__name__)

ADDRESSING = ("pn", "lid", "lid_only")
NOT_ON_WHATSAPP = "not on WhatsApp"


class SendRefused(Exception):
    """A device's send the sim refuses before accepting it (nothing reached WhatsApp)."""


@dataclass
class Messenger:
    devices_of: Callable[[str], list[Device]]
    streams: Streams
    lids: LidDirectory
    inbox: dict[str, list[Frame]]
    unregistered: set[str]
    changed: Callable[[], None]

    # ----- who is on WhatsApp ----------------------------------------------------------
    def is_registered(self, phone: str) -> bool:
        return phone not in self.unregistered

    def require_registered(self, phone: str) -> None:
        if not self.is_registered(phone):
            message = f"{mask_phone(phone)} is not on WhatsApp (see POST /sim/numbers)"
            raise SimError(409, "not_on_whatsapp", message)

    def set_registered(self, phone: str, registered: bool) -> None:
        if registered:
            self.unregistered.discard(phone)
        elif self.devices_of(phone):
            raise SimError(
                409,
                "phone_has_devices",
                f"{mask_phone(phone)} has linked devices; log them out first (a logout fault)",
            )
        else:
            self.unregistered.add(phone)
        self.changed()

    def lid_of(self, phone: str) -> str:
        """The "<lid>@lid" jid of a phone on WhatsApp; from now on the sim resolves it."""
        self.require_registered(phone)
        self._remember(phone)
        return lid_jid(phone)

    def _remember(self, phone: str) -> None:
        if self.lids.remember(phone):
            self.changed()

    # ----- inbound: a simulated contact writes to an account ---------------------------
    async def deliver(self, sender: str, to: str, text: str, addressing: str = "pn") -> str:
        if addressing not in ADDRESSING:
            raise SimError(
                400, "invalid_field", f"field 'addressing' must be one of: {', '.join(ADDRESSING)}"
            )
        self.require_registered(sender)
        targets = self.devices_of(to)
        if not targets:
            raise SimError(404, "not_linked", f"no device is linked to {mask_phone(to)}")
        self._remember(sender)
        frame = _message_frame(sender, text, addressing)
        for device in targets:
            device.pending[frame["id"]] = frame
            await self.streams.push_message(device, frame)
        self.changed()
        return str(frame["id"])

    # ----- outbound: a device sends ----------------------------------------------------
    async def device_send(self, device: Device, frame: Frame) -> list[Frame]:
        """The frames that answer a device's "send"."""
        ref = frame.get("ref")
        try:
            to = self._recipient(frame.get("to"))
            text = _text(frame.get("text"))
        except SendRefused as exc:
            return [{"type": "send_error", "ref": ref, "error": str(exc), "reached": False}]
        entry: dict[str, Any] = {
            "id": new_message_id(),
            "from": device.phone,
            "to": to,
            "text": text,
            "ts": utc_stamp(),
            "read": False,
        }
        self.inbox.setdefault(to, []).append(entry)
        self.changed()
        return [
            {"type": "sent", "ref": ref, "id": entry["id"]},
            {"type": "receipt", "id": entry["id"], "status": "delivered"},
        ]

    def _recipient(self, to: object) -> str:
        """The phone a send goes to: a phone-number jid's, or the one a LID stands for."""
        if not isinstance(to, str):
            raise SendRefused("bad send frame: 'to' must be a jid")
        target = parse_target(to)
        if target is None:
            raise SendRefused("bad send frame: 'to' is not a user jid (<digits>@s.whatsapp.net)")
        if target.is_lid:
            phone = self.lids.resolve(target.user)
            if phone is None:
                raise SendRefused("unknown LID: no WhatsApp user has it")
        else:
            phone = phone_of_pn_user(target.user)
        if phone is None or not self.is_registered(phone):
            raise SendRefused(NOT_ON_WHATSAPP)
        self._remember(phone)
        return phone

    # ----- read receipts ---------------------------------------------------------------
    async def mark_read(self, reader: str, sender: str | None = None) -> int:
        """``reader`` reads its unread messages (only ``sender``'s, if given): receipts go out."""
        owed: dict[str, Device] = {}
        count = 0
        for entry in self.inbox.get(reader, []):
            if entry.get("read") or (sender is not None and entry.get("from") != sender):
                continue
            entry["read"] = True
            count += 1
            receipt: Frame = {"type": "receipt", "id": entry["id"], "status": "read"}
            for device in self.devices_of(str(entry.get("from"))):
                device.receipts.append(dict(receipt))
                owed[device.id] = device
        if count:
            self.changed()
            logger.info("sim messages read", extra={"phone": mask_phone(reader), "count": count})
        for device in owed.values():
            await self.streams.push_receipts(device)
        return count


def _text(text: object) -> str:
    if not isinstance(text, str):
        raise SendRefused("bad send frame: 'text' must be a string")
    if not text:
        raise SendRefused("bad send frame: 'text' is empty")
    if len(text) > MAX_TEXT:
        raise SendRefused(f"text is longer than {MAX_TEXT} characters")
    if not is_unicode_text(text):
        raise SendRefused("text is not valid Unicode (a lone surrogate)")
    return text


def _message_frame(sender: str, text: str, addressing: str) -> Frame:
    frame: Frame = {"type": "message", "id": new_message_id(), "from": phone_to_jid(sender)}
    if addressing != "pn":
        frame["from"] = lid_jid(sender)
    if addressing == "lid":
        frame["fromPn"] = phone_to_jid(sender)
    frame.update({"text": text, "ts": utc_stamp()})
    return frame
