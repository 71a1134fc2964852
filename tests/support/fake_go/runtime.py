"""The Go runtime under goneonize: fatal errors and goneonize's unlocked package maps.

``go_fatal`` ends the process as Go does on a fatal error or an unrecovered panic (a
message and a goroutine trace on stderr, exit status 2). ``_GoMaps`` holds goneonize's
package maps (``clients``, ``StopSignal``, ``eventChannel``), which have no locks in the
real library: ``Neonize`` writes them from its start until the client is registered,
``Stop`` at its end; every other export reads them at its start, and the client thread
reads them when its QR loop ends. Every access is checked, and one that overlaps a write
dies with Go's ``concurrent map read and map write`` (or ``concurrent map writes``); each
access holds the map for the time ``FakeGoTiming`` gives it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from support.fake_go.config import FakeGoTiming

if TYPE_CHECKING:
    from support.fake_go.client import _Client


MAP_FATAL = "fatal error: concurrent map read and map write"
MAP_WRITES_FATAL = "fatal error: concurrent map writes"
NIL_PANIC = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x7b5d9a]"
)


def go_fatal(message: str) -> NoReturn:
    """End the process the way the Go runtime does on a fatal error or an unrecovered panic."""
    try:
        sys.stderr.write(f"{message}\n\ngoroutine 1 [running]:\nmain.(fake goneonize)\n")
        sys.stderr.flush()
    finally:
        os._exit(2)


class _GoMaps:
    """goneonize's package maps (clients, StopSignal, eventChannel): no locks, checked."""

    def __init__(self, timing: FakeGoTiming) -> None:
        self._timing = timing
        self._mx = threading.Lock()
        self._readers = 0
        self._writer: str | None = None
        self.clients: dict[bytes, _Client] = {}
        self.stop_signal: dict[bytes, threading.Event] = {}
        self.event_channel: dict[bytes, queue.Queue[tuple[int, Any]]] = {}

    @contextlib.contextmanager
    def reading(self, what: str) -> Iterator[None]:
        with self._mx:
            if self._writer is not None:
                go_fatal(f"{MAP_FATAL}\n(fake: {what} read while {self._writer} wrote)")
            self._readers += 1
        try:
            yield
            time.sleep(self._timing.read_hold)
        finally:
            with self._mx:
                self._readers -= 1

    @contextlib.contextmanager
    def writing(self, what: str, hold: float) -> Iterator[None]:
        with self._mx:
            if self._writer is not None:
                go_fatal(f"{MAP_WRITES_FATAL}\n(fake: {what} wrote while {self._writer} wrote)")
            if self._readers:
                go_fatal(f"{MAP_FATAL}\n(fake: {what} wrote during {self._readers} read(s))")
            self._writer = what
        try:
            yield
            time.sleep(hold)
        finally:
            with self._mx:
                self._writer = None
