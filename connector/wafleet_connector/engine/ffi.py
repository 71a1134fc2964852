"""Process-wide access to neonize's Go core (goneonize) for the neonize transport.

Facts this relies on (neonize 0.5.2: ``neonize/_binder.py``, ``neonize/client.py``,
``neonize/events.py``; goneonize ``main.go``):

- ``gocode.Neonize(...)`` opens the sqlite store, registers the event handlers,
  connects, then blocks for the whole life of the client (QR loop, then the event
  pump ``CallbackFunction``). It returns the error text of a failed connect.
- The Go side keeps clients in unlocked package maps (``clients``, ``StopSignal``,
  ``eventChannel``): ``Neonize`` writes them as it starts, ``Stop`` deletes from
  them, every other call reads them. Concurrent write + any access aborts the
  process, so calls go through ``_RWLock``: writers (client start window,
  ``Stop``) run alone; readers (send, pair, logout, ``Disconnect``) hold a short
  *lease* covering the map lookup at the start of the call, not the whole call.
- ``Stop`` and ``Disconnect`` wait for a dial in progress (up to 60 s). ``Stop``,
  ``Disconnect``, ``SendMessage``, ``PairPhone`` and ``Logout`` are safe on an
  unknown id ("client is nil"); ``FetchMe`` (run when the QR loop ends) is not.
- The whatsmeow log level is per client (``logLevel`` argument) and logs go to a
  callback we own, which masks phone numbers.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from wafleet_connector.engine.mapping import mask_text

log = logging.getLogger(__name__)
_whatsmeow_log = logging.getLogger(__name__ + ".whatsmeow")

T = TypeVar("T")

# neonize event codes (neonize/events.py EVENT_TO_INT) forwarded by the Go side:
# PairStatus, Connected, LoggedOut, StreamReplaced, TemporaryBan, ConnectFailure,
# ClientOutdated, Disconnected, Message, Receipt. Code 0 (own Device) always comes.
SUBSCRIBED_EVENTS = bytes([2, 3, 6, 7, 8, 9, 10, 12, 17, 18])
READ_LEASE = 0.25  # seconds a reader blocks writers: covers the Go map lookup
_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING}


class LockTimeout(Exception):
    """The call could not start: the Go core was busy with lifecycle calls."""


class _RWLock:
    """Readers/writer lock, writer-preferring; any thread may release."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self, timeout: float | None) -> bool:
        with self._cond:
            if not self._cond.wait_for(
                lambda: not (self._writer or self._writers_waiting), timeout
            ):
                return False
            self._readers += 1
            return True

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            try:
                self._cond.wait_for(lambda: not (self._writer or self._readers))
                self._writer = True
            finally:
                self._writers_waiting -= 1

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


def _once(fn: Callable[[], None]) -> Callable[[], None]:
    lock = threading.Lock()
    done = [False]

    def run() -> None:
        with lock:
            if done[0]:
                return
            done[0] = True
        fn()

    return run


class _Neonize:
    """neonize's modules, imported lazily (the import has process-wide side effects)."""

    def __init__(self) -> None:
        # Read by the Go runtime only when the library loads: without it neonize
        # tags every 1:1 message with <bot biz_bot="1"/>.
        os.environ.setdefault("NEONIZE_BOT_TAG", "off")
        root = logging.getLogger()
        guard = None if root.handlers else logging.NullHandler()
        if guard is not None:  # neonize.utils.log calls logging.basicConfig() on import
            root.addHandler(guard)
        try:
            from neonize import _binder  # noqa: PLC0415
            from neonize.events import INT_TO_EVENT  # noqa: PLC0415
            from neonize.proto import Neonize_pb2  # noqa: PLC0415
            from neonize.proto.waCompanionReg import (  # noqa: PLC0415
                WAWebProtobufsCompanionReg_pb2,
            )
            from neonize.proto.waE2E import WAWebProtobufsE2E_pb2  # noqa: PLC0415
        finally:
            if guard is not None:
                root.removeHandler(guard)
        self.binder: Any = _binder
        self.go: Any = _binder.gocode
        self.int_to_event: dict[int, Any] = INT_TO_EVENT
        self.pb: Any = Neonize_pb2
        self.e2e: Any = WAWebProtobufsE2E_pb2
        self.reg: Any = WAWebProtobufsCompanionReg_pb2
        self.log_cb: Any = _binder.func_callback_bytes2(self._on_log)

    def _on_log(self, ptr: int | None, size: int) -> None:
        try:
            if ptr and size > 0:
                entry = self.pb.LogEntry.FromString(ctypes.string_at(ptr, size))
                level = _LEVELS.get(str(entry.Level).upper(), logging.ERROR)
                _whatsmeow_log.log(level, "%s: %s", entry.Name, mask_text(str(entry.Message)))
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


class NeonizeFfi:
    """The only way the transport talks to the Go core. One per process (``ffi()``)."""

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._mod: _Neonize | None = None
        self._rw = _RWLock()
        self._keep: dict[bytes, tuple[Any, ...]] = {}  # ctypes callbacks Go may still call

    @property
    def n(self) -> _Neonize:
        with self._load_lock:
            if self._mod is None:
                self._mod = _Neonize()
            return self._mod

    def _reader(self, fn: Callable[[], T], lock_timeout: float | None = None) -> T:
        if not self._rw.acquire_read(lock_timeout):
            raise LockTimeout("neonize core busy")
        release = _once(self._rw.release_read)
        lease = threading.Timer(READ_LEASE, release)
        lease.daemon = True
        lease.start()
        try:
            return fn()
        finally:
            lease.cancel()
            release()

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
        self._rw.acquire_write()
        end_window = _once(self._rw.release_write)
        try:
            return self._neonize(start, callbacks, end_window) if may_start() else None
        finally:
            end_window()

    def _neonize(
        self, start: ClientStart, callbacks: ClientCallbacks, end_window: Callable[[], None]
    ) -> str:
        n, uuid = self.n, start.uuid
        props = n.reg.DeviceProps(
            os=start.device_name, platformType=n.reg.DeviceProps.PlatformType.Value(start.platform)
        ).SerializeToString()

        def on_qr(_uuid: int | None, data: int | None) -> None:
            end_window()
            _safe(callbacks.on_qr, ctypes.string_at(data).decode() if data else "")

        def on_status(_uuid: int | None, data: int | None) -> None:
            end_window()
            _safe(callbacks.on_status, ctypes.string_at(data).decode() if data else "")

        def on_event(_uuid: bytes | None, data: int | None, size: int, code: int) -> None:
            end_window()
            if not data:
                return
            try:
                msg = n.int_to_event[code].FromString(ctypes.string_at(data, size))
            except Exception:
                log.warning("undecodable neonize event %d", code, exc_info=True)
                return
            _safe(callbacks.on_event, code, msg)

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
                refs[0], refs[1], refs[2], n.log_cb, refs[3], len(subscribers),
                props, len(props), b"", 0,
                ctypes.byref(proxy_c) if proxy_c is not None else None,
            )  # fmt: skip
        finally:
            timer.cancel()
            end_window()
        self._keep.pop(uuid, None)  # Neonize returned: Go holds no more callbacks
        return bytes(result or b"").decode(errors="replace")

    def stop(self, uuid: bytes) -> None:
        """Go ``Stop``: disconnect, drop the client from the maps, end its event pump."""
        self._writer(lambda: self.n.go.Stop(uuid))

    def disconnect(self, uuid: bytes) -> None:
        """Go ``Disconnect``: close the socket (also cancels whatsmeow auto-reconnect)."""
        self._reader(lambda: self.n.go.Disconnect(uuid))

    def logout(self, uuid: bytes) -> str:
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
    """The process-wide NeonizeFfi (the Go core and its maps are process-wide)."""
    global _instance  # noqa: PLW0603
    with _instance_lock:
        if _instance is None:
            _instance = NeonizeFfi()
        return _instance


def run_in_daemon(fn: Callable[[], T], name: str) -> concurrent.futures.Future[T]:
    """Run ``fn`` on a new daemon thread; return a concurrent.futures.Future.

    Daemon threads, not the default executor: calls into Go can block for a
    minute and must neither exhaust an executor nor delay interpreter exit.
    """
    fut: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(fn())
        except BaseException as exc:
            fut.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut
