"""Process-wide access to neonize's Go core (goneonize) for the neonize transport.

Facts this relies on (neonize 0.5.2: ``neonize/_binder.py``, ``neonize/client.py``,
``neonize/events.py``; goneonize ``main.go``; checked against the shipped library):

- ``Neonize(...)`` opens the sqlite store, registers the event handlers, connects, then
  blocks for the whole life of the client (QR loop, then the event pump
  ``CallbackFunction``). It returns the error text of a failed connect. The store it
  opened is never closed: every client whose ``Neonize`` returned keeps one sqlite file
  handle open until the process ends.
- Event callbacks come from the thread that called ``Neonize``, one at a time (the
  pump waits for each). The payload is the serialized protobuf; an empty message
  (StreamReplaced, ClientOutdated, KeepAliveRestored) comes as NULL with size 0.
- The Go side keeps clients in unlocked package maps (``clients``, ``StopSignal``,
  ``eventChannel``): ``Neonize`` writes them as it starts, ``Stop`` deletes from
  them, every other call reads them. Concurrent write + any access aborts the
  process, so calls go through an `RWLock`: writers (client start window,
  ``Stop``) run alone; readers (send, pair, logout, ``Disconnect``) hold a short
  *lease* covering the map lookup at the start of the call, not the whole call.
  When a QR loop ends (the status callback), the Go thread reads the maps again
  (``CallbackFunction``, ``FetchMe``): the status callback takes a lease for that too.
- ``Stop`` and ``Disconnect`` wait for a dial in progress (up to 60 s). ``Stop``,
  ``Disconnect``, ``SendMessage``, ``PairPhone`` and ``Logout`` are safe on an
  unknown id ("client is nil"); ``FetchMe`` (run when the QR loop ends) is not.
- The whatsmeow log level is per client (``logLevel`` argument) and logs go to a
  callback we own, which masks phone numbers. The entries (``LogEntry``: module, level,
  text) name no client, so each client gets its own callback: it also tells its session
  when a line says the phone asked for a passkey (``mapping.passkey_log_signal``; a byte
  test first, so other lines cost nothing more). whatsmeow's goroutines may log after
  ``Neonize`` returned, so these callbacks are kept for the process's life (one small
  object per client; a worker retires after a bounded number of ended clients).
- QR-channel items other than codes reach the login-status callback as their event name
  (goneonize ``Neonize``: ``logStatusCb(evt.Event)``): the final "success", "timeout",
  "err-...", "error", and whatsmeow's "passkey-request", after which the channel stays
  open (qrchan.go).

``NeonizeFfi(lib=...)`` drives another object with the library's exports (``Neonize``,
``Stop``, ``Disconnect``, ``Logout``, ``PairPhone``, ``SendMessage``, ``GetVersion``,
called exactly as the ctypes functions are); neonize's protobuf classes and ctypes
callback types stay the real ones.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from wafleet_connector.engine.gothreads import RWLock, once, run_in_daemon, timed_release
from wafleet_connector.engine.loader import NeonizeModules, check_versions, load_modules
from wafleet_connector.engine.mapping import PASSKEY_LOG_MARKS, mask_text, passkey_log_signal
from wafleet_connector.engine.pins import EngineVersionError

__all__ = [
    "ClientCallbacks",
    "ClientStart",
    "EngineVersionError",
    "LockTimeout",
    "NeonizeFfi",
    "NeonizeModules",
    "check_versions",
    "decode_event",
    "ffi",
    "load_modules",
    "run_in_daemon",
]

log = logging.getLogger(__name__)
_whatsmeow_log = logging.getLogger(__name__ + ".whatsmeow")

T = TypeVar("T")

# neonize event codes (neonize/events.py EVENT_TO_INT) forwarded by the Go side:
# PairStatus, Connected, KeepAliveTimeout, KeepAliveRestored, LoggedOut, StreamReplaced,
# TemporaryBan, ConnectFailure, ClientOutdated, Disconnected, Message, Receipt.
# Code 0 (own Device) always comes first when the event pump starts.
SUBSCRIBED_EVENTS = bytes([2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 17, 18])
READ_LEASE = 0.25  # seconds a reader blocks writers: covers the Go map lookup
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}


class LockTimeout(Exception):
    """The call could not start: the Go core was busy with lifecycle calls."""


def decode_event(int_to_event: dict[int, Any], code: int, data: int | None, size: int) -> Any:
    """The event message Go passed as (pointer, size); None for an unknown code.

    goneonize passes NULL and 0 for an empty message: that is the empty message of the
    code's type, not a missing event.
    """
    cls = int_to_event.get(code)
    if cls is None:
        return None
    payload = ctypes.string_at(data, size) if data and size > 0 else b""
    return cls.FromString(payload)


def _c_string(data: int | None) -> str:
    return ctypes.string_at(data).decode(errors="replace") if data else ""


class _Neonize:
    """The modules and the Go library this NeonizeFfi drives."""

    def __init__(self, lib: Any | None) -> None:
        mod = load_modules(lib)
        self.binder: Any = mod.binder
        self.go: Any = mod.gocode if lib is None else lib
        self.int_to_event = mod.int_to_event
        self.pb: Any = mod.pb
        self.e2e: Any = mod.e2e
        self.reg: Any = mod.reg

    def log_entry(self, raw: bytes) -> Any:
        """A serialized ``LogEntry``, logged (phone numbers masked); the entry."""
        entry = self.pb.LogEntry.FromString(raw)
        level = _LEVELS.get(str(entry.Level).upper(), logging.ERROR)
        _whatsmeow_log.log(level, "%s: %s", entry.Name, mask_text(str(entry.Message)))
        return entry


class _ClientLog:
    """One client's whatsmeow log callback (called on Go threads): logs each entry, and
    tells the client's session about a line that says a passkey was asked."""

    def __init__(self, n: _Neonize, on_passkey: Callable[[str], None] | None) -> None:
        self._n = n
        self.on_passkey = on_passkey  # None once the client's Neonize has returned

    def __call__(self, ptr: int | None, size: int) -> None:
        try:
            if not ptr or size <= 0:
                return
            raw = ctypes.string_at(ptr, size)
            entry = self._n.log_entry(raw)
            on_passkey = self.on_passkey
            if on_passkey is None or not any(mark in raw for mark in PASSKEY_LOG_MARKS):
                return
            signal = passkey_log_signal(str(entry.Name), str(entry.Message))
            if signal is not None:
                on_passkey(signal)
        except Exception:  # never let an exception cross into Go
            log.debug("bad whatsmeow log entry", exc_info=True)


@dataclass(frozen=True)
class ClientStart:
    uuid: bytes  # the client's id in the Go maps: unique per session
    db_path: str  # the sqlite store
    device_name: str  # DeviceProps.os: the name in the phone's linked devices list
    platform: str  # DeviceProps.PlatformType name
    log_level: str  # whatsmeow log level for this client
    proxy: str | None
    start_grace: float


@dataclass(frozen=True)
class ClientCallbacks:
    """Called from Go threads. Must not raise (exceptions are logged and dropped)."""

    on_qr: Callable[[str], None]
    on_status: Callable[[str], None]
    on_event: Callable[[int, Any], None]
    on_passkey_log: Callable[[str], None] | None = None  # a log line: a passkey was asked


class NeonizeFfi:
    """The only way the transport talks to the Go core. One per process (``ffi()``).

    ``lib``: an object standing in for the Go library (tests, the engine's fake); None
    for neonize's own. Versions are checked when it is first used (``n``).
    """

    def __init__(self, lib: Any | None = None) -> None:
        self._lib = lib
        self._load_lock = threading.Lock()
        self._mod: _Neonize | None = None
        self._rw = RWLock()
        self._keep: dict[bytes, tuple[Any, ...]] = {}  # ctypes callbacks Go may still call
        self._log_callbacks: list[Any] = []  # one per client, for the process's life

    @property
    def n(self) -> _Neonize:
        with self._load_lock:
            if self._mod is None:
                self._mod = _Neonize(self._lib)
            return self._mod

    def held_callbacks(self) -> int:
        """Clients whose ctypes callbacks are kept alive (their Neonize has not returned)."""
        return len(self._keep)

    def _reader(self, fn: Callable[[], T], lock_timeout: float | None = None) -> T:
        if not self._rw.acquire_read(lock_timeout):
            raise LockTimeout("neonize core busy")
        end = timed_release(self._rw.release_read, READ_LEASE)
        try:
            return fn()
        finally:
            end()

    def _writer(self, fn: Callable[[], T]) -> T:
        self._rw.acquire_write()
        try:
            return fn()
        finally:
            self._rw.release_write()

    def run_client(
        self, start: ClientStart, callbacks: ClientCallbacks, may_start: Callable[[], bool]
    ) -> str | None:
        """Run one client until it ends; return its error text ("" if none).

        Blocks for the client's life. Holds the writer side of the lock from just
        before ``Neonize`` until its first callback, its return or ``start_grace``.
        Returns None without starting if ``may_start()`` is false once the lock is held.
        """
        n = self.n  # load (and check versions) before taking the lock
        self._rw.acquire_write()
        end_window = once(self._rw.release_write)
        try:
            return self._neonize(n, start, callbacks, end_window) if may_start() else None
        finally:
            end_window()

    def _neonize(
        self,
        n: _Neonize,
        start: ClientStart,
        callbacks: ClientCallbacks,
        end_window: Callable[[], None],
    ) -> str:
        uuid = start.uuid
        props = n.reg.DeviceProps(
            os=start.device_name, platformType=n.reg.DeviceProps.PlatformType.Value(start.platform)
        ).SerializeToString()
        status_leases: list[Callable[[], None]] = []

        def end_status_leases() -> None:
            while status_leases:
                status_leases.pop()()

        def on_qr(_uuid: int | None, data: int | None) -> None:
            end_window()
            _safe(callbacks.on_qr, _c_string(data))

        def on_status(_uuid: int | None, data: int | None) -> None:
            end_window()
            # The QR loop ends once this returns; the Go thread then reads the client
            # maps (CallbackFunction, FetchMe) before its first event: cover that read.
            self._rw.acquire_read(None)
            try:
                _safe(callbacks.on_status, _c_string(data))
            finally:
                status_leases.append(timed_release(self._rw.release_read, READ_LEASE))

        def on_event(_uuid: bytes | None, data: int | None, size: int, code: int) -> None:
            end_window()
            end_status_leases()
            try:
                msg = decode_event(n.int_to_event, code, data, size)
            except Exception:
                log.warning("undecodable neonize event %d", code, exc_info=True)
                return
            if msg is None:
                log.debug("unknown neonize event code %d", code)
                return
            _safe(callbacks.on_event, code, msg)

        client_log = _ClientLog(n, callbacks.on_passkey_log)
        log_cb = n.binder.func_callback_bytes2(client_log)
        self._log_callbacks.append(log_cb)  # whatsmeow may log after Neonize returned
        subscribers = bytearray(SUBSCRIBED_EVENTS)
        proxy = start.proxy
        proxy_c = n.binder.ProxySettings(proxy_address=proxy)._to_c_struct() if proxy else None
        refs = (
            n.binder.func_string(on_qr),
            n.binder.func_string(on_status),
            n.binder.func_callback_bytes(on_event),
            (ctypes.c_char * len(subscribers)).from_buffer(subscribers),
            subscribers,
            proxy_c,
        )
        self._keep[uuid] = refs
        timer = threading.Timer(start.start_grace, end_window)
        timer.daemon = True
        timer.start()
        try:
            result = n.go.Neonize(
                start.db_path.encode(), uuid, b"", 0, 0, start.log_level.encode(),
                refs[0], refs[1], refs[2], log_cb, refs[3], len(subscribers),
                props, len(props), b"", 0,
                ctypes.byref(proxy_c) if proxy_c is not None else None,
            )  # fmt: skip
        finally:
            timer.cancel()
            end_window()
            end_status_leases()
            client_log.on_passkey = None  # the session is over: its log lines say nothing
        self._keep.pop(uuid, None)  # Neonize returned: Go holds no more callbacks
        return bytes(result or b"").decode(errors="replace")

    def stop(self, uuid: bytes) -> None:
        """Go ``Stop``: disconnect, drop the client from the maps, end its event pump."""
        self._writer(lambda: self.n.go.Stop(uuid))

    def disconnect(self, uuid: bytes) -> None:
        """Go ``Disconnect``: close the socket (also cancels whatsmeow auto-reconnect)."""
        self._reader(lambda: self.n.go.Disconnect(uuid))

    def logout(self, uuid: bytes) -> str:
        """Go ``Logout``: "" once WhatsApp confirmed the unlink, else the error text."""
        return bytes(self._reader(lambda: self.n.go.Logout(uuid)) or b"").decode(errors="replace")

    def pair_phone(self, uuid: bytes, phone: str, client_type: int, display: str) -> Any:
        n = self.n
        params = n.pb.PairPhoneParams(
            phone=phone, showPushNotification=True, clientType=client_type,
            clientDisplayName=display,
        ).SerializeToString()  # fmt: skip
        raw = self._reader(lambda: n.go.PairPhone(uuid, params, len(params)))
        return n.pb.PairPhoneReturnFunction.FromString(raw)

    def send_text(
        self,
        uuid: bytes,
        to: tuple[str, str],
        text: str,
        lock_timeout: float,
        started: threading.Event,
    ) -> Any:
        """Go ``SendMessage`` of a plain ``conversation`` message; SendMessageReturnFunction."""
        n = self.n
        jid = n.pb.JID(
            User=to[0], Server=to[1], RawAgent=0, Device=0, Integrator=0, IsEmpty=False
        ).SerializeToString()
        body = n.e2e.Message(conversation=text).SerializeToString()

        def call() -> Any:
            started.set()
            return n.go.SendMessage(uuid, jid, len(jid), body, len(body))

        return n.pb.SendMessageReturnFunction.FromString(self._reader(call, lock_timeout))


def _safe(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("neonize callback failed")


_instance: NeonizeFfi | None = None
_instance_lock = threading.Lock()


def ffi() -> NeonizeFfi:
    """The process-wide NeonizeFfi on neonize's own library."""
    global _instance  # noqa: PLW0603
    with _instance_lock:
        if _instance is None:
            _instance = NeonizeFfi()
        return _instance
