"""Injected faults: what WhatsApp does to a phone's devices when things go wrong.

Some faults act once on the live streams (disconnect, stream_replaced, the keepalive
pair); some also last a while (temp_ban, client_outdated, logout_fails) and shape
how the sim answers that phone's devices until they expire.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wafleet.sim.model import Device, SimConfig
from wafleet.sim.streams import Streams
from wafleet.sim.wire import ConnClosed, Frame

FAULT_KINDS = (
    "disconnect",
    "logout",
    "stream_replaced",
    "temp_ban",
    "logout_fails",
    "keepalive_timeout",
    "keepalive_restored",
    "client_outdated",
    "unresponsive",
)
# These take "seconds". unresponsive: the phone's devices are cut off, and while it lasts
# a device's connection is accepted but never answered (a handshake that hangs, as behind
# a network that drops packets), so only the client's own connect timeout ends it.
TIMED_FAULTS = ("temp_ban", "logout_fails", "client_outdated", "unresponsive")
UNRESPONSIVE_SECONDS = 60.0
MAX_FAULT_SECONDS = 86400.0

LOGGED_OUT_FROM_PHONE: Frame = {
    "type": "logged_out",
    "reason": "logged_out_from_phone",
    "code": 401,
}
CLIENT_OUTDATED: Frame = {"type": "client_outdated"}


@dataclass
class FaultTimers:
    """Until when (monotonic seconds) each lasting fault holds, per phone."""

    config: SimConfig
    bans: dict[str, float] = field(default_factory=dict)
    outdated: dict[str, float] = field(default_factory=dict)
    logout_fails: dict[str, float] = field(default_factory=dict)
    silent: dict[str, float] = field(default_factory=dict)

    def arm(self, kind: str, phone: str, seconds: float | None) -> None:
        tables = {
            "temp_ban": (self.bans, self.config.temp_ban_seconds),
            "client_outdated": (self.outdated, self.config.client_outdated_seconds),
            "logout_fails": (self.logout_fails, self.config.logout_fails_seconds),
            "unresponsive": (self.silent, UNRESPONSIVE_SECONDS),
        }
        if kind in tables:
            table, default = tables[kind]
            table[phone] = time.monotonic() + (seconds or default)

    @staticmethod
    def _left(table: dict[str, float], phone: str) -> float:
        return max(0.0, table.get(phone, 0.0) - time.monotonic())

    def banned_for(self, phone: str) -> float:
        return self._left(self.bans, phone)

    def is_outdated(self, phone: str) -> bool:
        return self._left(self.outdated, phone) > 0

    def logout_refused(self, phone: str) -> bool:
        return self._left(self.logout_fails, phone) > 0

    def unresponsive(self, phone: str) -> bool:
        return self._left(self.silent, phone) > 0

    def refusal(self, phone: str) -> Frame | None:
        """The frame that ends a connection of ``phone``'s device at once, if one does."""
        if self.is_outdated(phone):
            return dict(CLIENT_OUTDATED)
        if (left := self.banned_for(phone)) > 0:
            return {"type": "temp_ban", "retryAfter": left}
        return None


@dataclass
class FaultInjector:
    timers: FaultTimers
    streams: Streams
    remove_device: Callable[[Device], None]

    async def apply(self, device: Device, kind: str) -> None:
        """Apply one fault to one device (its lasting part is armed by the caller)."""
        if kind == "logout":
            self.remove_device(device)
        stream = self.streams.of(device)
        if stream is None or kind == "logout_fails":
            return  # logout_fails only changes how the next "logout" frame is answered
        if kind == "keepalive_timeout":
            await self.streams.keepalive_timeout(stream)
            return
        if kind == "keepalive_restored":
            await self.streams.keepalive_restored(stream)
            return
        final = self._final_frame(kind, device.phone)
        self.streams.detach(stream)
        if final is not None:
            with contextlib.suppress(ConnClosed):
                await stream.conn.send(final)
        await stream.conn.close()

    def _final_frame(self, kind: str, phone: str) -> Frame | None:
        if kind == "logout":
            return dict(LOGGED_OUT_FROM_PHONE)
        if kind == "stream_replaced":
            return {"type": "stream_replaced"}
        if kind == "temp_ban":
            return {"type": "temp_ban", "retryAfter": self.timers.banned_for(phone)}
        if kind == "client_outdated":
            return dict(CLIENT_OUTDATED)
        return None  # disconnect, unresponsive: the stream just ends
