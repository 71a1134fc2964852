"""The loop side of a session's events: one task hands them to the sink, in order.

Inbound messages always go to the sink (whatsmeow has already acknowledged them to
WhatsApp), also after the session stopped or the delivery ended; the Go thread that
delivered one waits on its ``ack`` future. Other events go only until ``stopped``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging

from wafleet_connector.transport import EventSink, InboundMessage, TransportEvent

log = logging.getLogger(__name__)

Ack = concurrent.futures.Future[None]
_Item = tuple[TransportEvent | None, Ack | None]


class SessionEnded(Exception):
    """The event loop is gone: an inbound message could not reach the sink."""


class Delivery:
    def __init__(self, sink: EventSink, loop: asyncio.AbstractEventLoop, tag: str) -> None:
        self._sink, self._loop, self._tag = sink, loop, tag
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._late: set[asyncio.Task[None]] = set()  # messages after the delivery ended
        self.stopped = False  # from now on only inbound messages reach the sink
        self.done: asyncio.Future[None] = loop.create_future()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = self._loop.create_task(self._run())

    def event(self, event: TransportEvent) -> None:
        self._queue.put_nowait((event, None))

    def inbound(self, event: InboundMessage, ack: Ack) -> None:
        if self.running:
            self._queue.put_nowait((event, ack))
            return
        task = self._loop.create_task(self._to_sink(event, ack))
        self._late.add(task)
        task.add_done_callback(self._late.discard)

    def end(self) -> None:
        """Nothing more will come from Go: finish after what is queued."""
        self._queue.put_nowait((None, None))

    async def _run(self) -> None:
        try:
            while True:
                event, ack = await self._queue.get()
                if event is None:
                    return
                if self.stopped and not isinstance(event, InboundMessage):
                    continue  # a stopped session reports nothing but messages
                await self._to_sink(event, ack)
        finally:
            if not self.done.done():
                self.done.set_result(None)

    async def _to_sink(self, event: TransportEvent, ack: Ack | None) -> None:
        try:
            await self._sink(event)
        except BaseException as exc:
            if ack is not None and not ack.done():
                ack.set_exception(exc if isinstance(exc, Exception) else SessionEnded())
            if not isinstance(exc, Exception):
                raise
            log.exception("neonize session %s: sink failed", self._tag)
        else:
            if ack is not None and not ack.done():
                ack.set_result(None)
