"""Wake-ups for the event stream: one registration with the log, many waiting streams.

The log calls :meth:`EventFeed.logged` after each write of this process that logged an
event; every open stream then reads the log at once. Writes of other processes (the
connectors of a cluster) are seen by the streams' own polling, every
``WAFLEET_EVENT_POLL`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from wafleet.stores.base import EventLog


class EventFeed:
    def __init__(self) -> None:
        self._waiting: set[asyncio.Event] = set()
        self._attached: set[int] = set()

    def attach(self, log: EventLog) -> None:
        """Be told of the writes to ``log`` (once per log object)."""
        if id(log) not in self._attached:
            self._attached.add(id(log))
            log.on_logged(self.logged)

    def logged(self) -> None:
        for wake in self._waiting:
            wake.set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        """An event set after each local write; cleared by its reader."""
        wake = asyncio.Event()
        self._waiting.add(wake)
        try:
            yield wake
        finally:
            self._waiting.discard(wake)

    @property
    def streams(self) -> int:
        return len(self._waiting)
