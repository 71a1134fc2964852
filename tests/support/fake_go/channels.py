"""One fake client's state, and goneonize's two channels from whatsmeow to Python.

``_ClientBase`` holds what a whatsmeow client and its goneonize glue keep; the client's
other parts build on it (``store``, ``stream``, ``frames``, ``requests``, then ``client``).

- The event channel: goneonize's handler puts each subscribed event into a 100-slot
  channel (``eventChan <- evt``), blocking while it is full; once ``Stop`` has cancelled
  the pump the handler gives up (the real goroutine would block for good).
- The QR channel: QR codes, then one final status ("success", "timeout", "err-..."), then
  closed; ``Stop`` deleting the client closes it too, so a QR loop in progress ends. A
  "passkey-request" item is not final (qrchan.go): the channel stays open, codes follow.
- ``_log``: goneonize's log callback with serialized ``LogEntry`` protobufs; entries below
  the level ``Neonize`` was given are dropped.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import queue
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any

from websockets.sync.client import ClientConnection

from support.fake_go.config import CHANNEL_SLOTS
from support.fake_go.convert import _Start

if TYPE_CHECKING:
    from support.fake_go.library import FakeGoLibrary
    from support.fake_go.store import _Creds

_LEVELS = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}
_CLOSED = object()  # the QR channel was closed


class _ClientBase:
    """One whatsmeow client's state, and goneonize's channels (see the module docstring)."""

    def __init__(self, lib: FakeGoLibrary, start: _Start) -> None:
        self.lib, self.start, self.t = lib, start, lib.timing
        self.pb, self.e2e = lib.mod.pb, lib.mod.e2e
        self.uuid = start.uuid
        self.stats = lib.stats(start.uuid)
        self.events: queue.Queue[tuple[int, Any]] = queue.Queue(CHANNEL_SLOTS)
        self.cancelled = threading.Event()  # StopSignal: the pump's context
        self.returned = threading.Event()
        self.where = "starting"  # where Neonize's thread is: for tests
        self.store: sqlite3.Connection | None = None
        self.device: _Creds | None = None
        self.device_ready = threading.Event()
        self.qr: queue.Queue[Any] = queue.Queue()
        self._qr_open = True
        self._qr_shown = 0
        self._qr_timer: threading.Timer | None = None
        self._socket_lock = threading.Lock()  # whatsmeow's socketLock (held while dialling)
        self._mx = threading.Lock()
        self.ws: ClientConnection | None = None
        self._expected = threading.Event()  # whatsmeow's expectedDisconnect
        self._pairing_phone: str | None = None
        self._connected_seen = False
        self._last_keepalive = time.monotonic()
        self._pending: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}
        self.deleted = False

    def _log(self, level: str, name: str, message: str) -> None:
        if _LEVELS.get(level, 3) < _LEVELS.get(self.start.log_level.upper(), 1):
            return
        entry = self.pb.LogEntry(Message=message, Level=level, Name=name).SerializeToString()
        buf = ctypes.create_string_buffer(entry, len(entry))
        self.start.log_cb(ctypes.addressof(buf), len(entry))

    # ---- whatsmeow: events into goneonize's channel ---------------------------------------

    def dispatch(self, code: int, msg: Any) -> bool:
        """goneonize's handler: ``eventChan <- evt`` (blocks while the channel is full)."""
        if code not in self.start.subscribed:
            return False
        while not self.cancelled.is_set():
            try:
                self.events.put((code, msg), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False  # Stop came first: this handler goroutine would block for good

    def _qr_put(self, item: Any) -> None:
        """Into the QR channel; a (final) status is its last item, then it is closed."""
        with self._mx:
            if not self._qr_open:
                return
            if item is not _CLOSED:
                self.qr.put(item)
            if item is _CLOSED or item[0] == "status":
                self._qr_open = False
                self.qr.put(_CLOSED)
                if self._qr_timer is not None:
                    self._qr_timer.cancel()

    def qr_status(self, status: str) -> None:
        """The QR channel's last item, then it is closed."""
        self._qr_put(("status", status))

    def qr_event(self, event: str) -> None:
        """A QR channel item that is not the last (whatsmeow's "passkey-request"): goneonize
        hands it to the same login-status callback as a final status."""
        self._qr_put(("event", event))

    def stopped(self) -> None:
        """Stop deleted the client (strict: a QR loop in progress ends, FetchMe follows)."""
        self._qr_put(_CLOSED)
