"""The sim's data: its settings, linked devices, live streams, and the refusal error."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wafleet.core.phones import phone_to_jid
from wafleet.sim.wire import Conn, Frame

MAX_TEXT = 65536  # characters in one text message, as WhatsApp allows


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
    client_outdated_seconds: float = 60.0  # default length of a client_outdated fault
    logout_fails_seconds: float = 60.0  # default length of a logout_fails fault


@dataclass
class Device:
    id: str
    secret: str
    phone: str
    pending: dict[str, Frame] = field(default_factory=dict)  # unacknowledged inbound
    receipts: list[Frame] = field(default_factory=list)  # not yet sent to the device

    @property
    def jid(self) -> str:
        return phone_to_jid(self.phone)


@dataclass(eq=False)
class Stream:
    """One device's live connection and what it has been sent."""

    conn: Conn
    device: Device
    caught_up: bool = False  # the backlog is sent: new frames go out as they happen
    keepalive_errors: int = 0  # > 0 while the stream is unwell: nothing is pushed
    sent: set[str] = field(default_factory=set)  # message ids sent on this stream
    flushing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def well(self) -> bool:
        return self.keepalive_errors == 0


def new_message_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


def utc_stamp(at: datetime | None = None) -> str:
    """An ISO 8601 UTC time with milliseconds and a "Z", as WhatsApp timestamps go."""
    stamp = at or datetime.now(UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wall_stamp(at: float) -> str:
    """The wall-clock stamp of the monotonic time ``at``."""
    return utc_stamp(datetime.now(UTC) + timedelta(seconds=at - time.monotonic()))


def is_unicode_text(value: str) -> bool:
    """False for strings with lone surrogates: they cannot be encoded, so never sent."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
