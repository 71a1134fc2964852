"""The live stream of each device: what it is owed, and when frames may be pushed on it.

A stream first gets its backlog (the unacknowledged messages, then the receipts that
waited for it); only then do new messages and receipts go out as they happen. While
a keepalive fault holds the stream unwell, nothing is pushed; when it is restored,
the stream catches up on what it missed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from wafleet.sim.model import Device, Stream
from wafleet.sim.wire import Conn, ConnClosed, Frame


class Streams:
    def __init__(self, changed: Callable[[], None]) -> None:
        self.live: dict[str, Stream] = {}  # device id -> its one live stream
        self._changed = changed

    def attach(self, conn: Conn, device: Device) -> tuple[Stream, Stream | None]:
        """Make ``conn`` the device's live stream; also returns the one it replaces."""
        old = self.live.get(device.id)
        stream = Stream(conn=conn, device=device)
        self.live[device.id] = stream
        return stream, old

    def detach(self, stream: Stream) -> None:
        """Forget ``stream`` (if it is still the live one): nothing more is pushed on it."""
        if self.live.get(stream.device.id) is stream:
            del self.live[stream.device.id]
        stream.caught_up = False

    def of(self, device: Device) -> Stream | None:
        return self.live.get(device.id)

    async def catch_up(self, stream: Stream) -> None:
        """Send the messages this stream has not had, then the waiting receipts."""
        async with stream.flushing:
            pending = stream.device.pending
            while stream.well and (
                todo := [f for key, f in pending.items() if key not in stream.sent]
            ):
                for frame in todo:
                    if not stream.well:
                        break
                    stream.sent.add(str(frame["id"]))
                    await stream.conn.send(frame)
            if stream.well:
                await self._send_receipts(stream)
            if stream.well and self.live.get(stream.device.id) is stream:
                stream.caught_up = True

    async def push_message(self, device: Device, frame: Frame) -> None:
        """Send a new message now if the device's stream is caught up and well."""
        stream = self.live.get(device.id)
        if stream is None or not stream.caught_up:
            return  # it stays pending: the next catch-up sends it
        stream.sent.add(str(frame["id"]))
        with contextlib.suppress(ConnClosed):
            await stream.conn.send(frame)

    async def push_receipts(self, device: Device) -> None:
        """Send the device's waiting receipts now if its stream is caught up and well."""
        stream = self.live.get(device.id)
        if stream is None or not stream.caught_up:
            return
        async with stream.flushing:
            with contextlib.suppress(ConnClosed):
                await self._send_receipts(stream)

    async def _send_receipts(self, stream: Stream) -> None:
        receipts = stream.device.receipts
        while receipts and stream.well:
            frame = receipts.pop(0)
            try:
                await stream.conn.send(frame)
            except ConnClosed:
                receipts.insert(0, frame)  # it waits for the next connection
                raise
            self._changed()

    async def keepalive_timeout(self, stream: Stream) -> None:
        stream.keepalive_errors += 1
        stream.caught_up = False
        frame = {"type": "keepalive_timeout", "errorCount": stream.keepalive_errors}
        with contextlib.suppress(ConnClosed):
            await stream.conn.send(frame)

    async def keepalive_restored(self, stream: Stream) -> None:
        if stream.well:
            return  # nothing to restore: WhatsApp says nothing either
        stream.keepalive_errors = 0
        with contextlib.suppress(ConnClosed):
            await stream.conn.send({"type": "keepalive_restored"})
            await self.catch_up(stream)

    async def close_all(self) -> None:
        for stream in list(self.live.values()):
            await stream.conn.close()
