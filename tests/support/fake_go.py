"""A strict fake of goneonize, neonize 0.5.2's Go library, over the simulated WhatsApp.

``FakeGoLibrary`` has the exports the engine calls (``Neonize``, ``Stop``, ``Disconnect``,
``Logout``, ``PairPhone``, ``SendMessage``, ``GetVersion``), takes their arguments the way
the ctypes functions do (checked against neonize's own ``argtypes``; buffers are read
through their pointers for the given sizes) and returns what those functions return
after neonize's ``errcheck`` hooks (``bytes``). ``NeonizeFfi(lib=FakeGoLibrary(url))``
drives it; everything else (protobuf classes, ctypes callback types) stays real.

Its "WhatsApp server" is the sim's device stream (``wafleet.sim.wire``), dialled with a
synchronous websockets client. Frames become what whatsmeow + goneonize would do:

- Callbacks come the way goneonize makes them: QR codes, QR-loop statuses and events on
  the thread that called ``Neonize``; events as real pointers to serialized neonize
  protobufs and their size, NULL and 0 for an empty message; code 0 (own Device) first
  when the event pump starts; the pump waits for each callback to return.
- Inbound messages: queued in a 100-slot channel, acknowledged to the sim (``ack``, the
  receipt) as soon as they are queued, before Python sees them; ``Stop`` cancels the
  pump and what is still queued is lost (``ClientStats.lost``).
- Unlocked Go maps (``_GoMaps``): ``Neonize`` writes them from its start until the client
  is registered, ``Stop`` at its end; every other export reads them at its start, and the
  client thread reads them when its QR loop ends. Any access overlapping a write prints
  ``fatal error: concurrent map read and map write`` and ends the process (exit 2).
- After a QR timeout ``Neonize`` never returns (``FetchMe`` waits for a device id);
  ``Stop`` before the event pump ends the QR loop, and ``FetchMe`` then dies of a nil
  pointer dereference, like the real library.
- Every ``Neonize`` that returns keeps its sqlite store handle open (``leaked_stores``).
- ``Disconnect`` waits for a dial in progress; the stream closing without a final frame
  gives ``Disconnected`` and whatsmeow's auto-reconnect; ``stream_replaced``,
  ``client_outdated``, ``temp_ban``, ``logged_out`` end the stream with no
  ``Disconnected``; keepalive failures for ``keepalive_max_fail`` force a reconnect with
  no ``Disconnected`` (a new ``Connected`` follows).
- Unknown client ids answer what the shipped library answers ("client is nil", ...).
- ``die()`` ends the process as a Go fatal error; so does an inbound message whose text
  is ``fatal_text``.

The session file keeps the sim credentials in table ``fake_go_device``, and after pairing
a row in ``whatsmeow_device`` (whatsmeow's own schema), so that "does this file hold a
linked device" reads the same for real and fake stores.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import itertools
import json
import logging
import os
import queue
import re
import secrets
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from google.protobuf.message import EncodeError
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from wafleet_connector.engine.ffi import NeonizeModules, load_modules

log = logging.getLogger(__name__)

SIM_URL_ENV = "WAFLEET_FAKE_GO_SIM_URL"
FATAL_TEXT_ENV = "WAFLEET_FAKE_GO_FATAL_TEXT"
GO_VERSION = b"0.5.2"
CHANNEL_SLOTS = 100  # goneonize: make(chan *MessageEvent, 100)
MAP_FATAL = "fatal error: concurrent map read and map write"
MAP_WRITES_FATAL = "fatal error: concurrent map writes"
NIL_PANIC = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x7b5d9a]"
)
PAIR_NIL = (
    "client is nil: ensure client is connected before calling PairPhone, "
    "or pass pairphone to connect()"
)
NOT_LOGGED_IN = "the store doesn't contain a device JID"
_USER_SERVERS = {"s.whatsapp.net", "lid", "g.us", "broadcast", "newsletter", "bot"}
_LOGOUT_REASONS = {401: "LOGGED_OUT", 403: "MAIN_DEVICE_GONE", 406: "UNKNOWN_LOGOUT"}
_RECEIPTS = {"delivered": "DELIVERED", "read": "READ", "played": "PLAYED"}
_LEVELS = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}
_CLOSED = object()  # the QR channel was closed

# whatsmeow's schema for the device table (store/sqlstore/upgrades/00-latest-schema.sql)
WHATSMEOW_DEVICE_SCHEMA = """
CREATE TABLE IF NOT EXISTS whatsmeow_device (
    jid TEXT PRIMARY KEY,
    lid TEXT,
    facebook_uuid uuid,
    registration_id BIGINT NOT NULL CHECK ( registration_id >= 0 AND registration_id < 4294967296 ),
    noise_key    bytea NOT NULL CHECK ( length(noise_key) = 32 ),
    identity_key bytea NOT NULL CHECK ( length(identity_key) = 32 ),
    signed_pre_key     bytea   NOT NULL CHECK ( length(signed_pre_key) = 32 ),
    signed_pre_key_id  INTEGER NOT NULL CHECK ( signed_pre_key_id >= 0 AND signed_pre_key_id < 16777216 ),
    signed_pre_key_sig bytea   NOT NULL CHECK ( length(signed_pre_key_sig) = 64 ),
    adv_key             bytea NOT NULL,
    adv_details         bytea NOT NULL,
    adv_account_sig     bytea NOT NULL CHECK ( length(adv_account_sig) = 64 ),
    adv_account_sig_key bytea NOT NULL CHECK ( length(adv_account_sig_key) = 32 ),
    adv_device_sig      bytea NOT NULL CHECK ( length(adv_device_sig) = 64 ),
    platform      TEXT NOT NULL DEFAULT '',
    business_name TEXT NOT NULL DEFAULT '',
    push_name     TEXT NOT NULL DEFAULT '',
    lid_migration_ts BIGINT NOT NULL DEFAULT 0,
    companion_meta_nonce TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS fake_go_device (
    jid TEXT PRIMARY KEY,
    sim_id TEXT NOT NULL,
    sim_secret TEXT NOT NULL
);
"""  # noqa: E501


def go_fatal(message: str) -> NoReturn:
    """End the process the way the Go runtime does on a fatal error or an unrecovered panic."""
    try:
        sys.stderr.write(f"{message}\n\ngoroutine 1 [running]:\nmain.(fake goneonize)\n")
        sys.stderr.flush()
    finally:
        os._exit(2)


@dataclass(frozen=True)
class FakeGoTiming:
    """How long things take in the fake; defaults as in whatsmeow where it has them."""

    read_hold: float = 0.002  # a Go map read
    neonize_write_hold: float = 0.02  # Neonize's map writes + opening the store
    stop_write_hold: float = 0.002  # Stop's map deletes
    dial_timeout: float = 10.0
    iq_timeout: float = 75.0  # whatsmeow's default request timeout (logout, pairing code)
    send_timeout: float = 75.0  # whatsmeow waits this long for the server's send ack
    qr_codes: int = 6  # whatsmeow gets 6 codes per QR session, then times out
    pairing_ttl: float = 160.0  # a pairing code session ends like the QR codes would
    keepalive_max_fail: float = 180.0  # whatsmeow's KeepAliveMaxFailTime
    reconnect_step: float = 2.0  # whatsmeow's auto-reconnect delay: errors x 2 s


@dataclass
class ClientStats:
    """What one fake client did with inbound messages (ids)."""

    acked: list[str] = field(default_factory=list)  # receipts sent to the sim
    seen: list[str] = field(default_factory=list)  # handed to the Python callback
    lost: list[str] = field(default_factory=list)  # still queued when Stop came


class _MarshalError(Exception):
    """proto.Marshal failed in the event pump (a required field was not set)."""


@dataclass
class _Creds:
    jid: str  # the device jid, "user:device@s.whatsapp.net"
    sim_id: str
    sim_secret: str


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


def _arg(argtypes: list[Any], args: tuple[Any, ...], name: str) -> None:
    """Check ``args`` as ctypes would against the real function's ``argtypes``."""
    if len(args) != len(argtypes):
        raise TypeError(
            f"{name}: this function takes {len(argtypes)} arguments ({len(args)} given)"
        )
    for i, (argtype, value) in enumerate(zip(argtypes, args, strict=True)):
        try:
            argtype.from_param(value)
        except TypeError as exc:
            raise ctypes.ArgumentError(f"argument {i + 1}: {type(exc).__name__}: {exc}") from None


def _read(value: Any, size: int, what: str) -> bytes:
    """What Go's ``C.GoBytes(ptr, size)`` reads; dies like Go on a bad pointer/size."""
    if size <= 0:
        return b""
    if value is None:
        go_fatal(f"{NIL_PANIC}\n(fake: {what}: NULL pointer with size {size})")
    data = bytes(value)
    if len(data) < size:
        go_fatal(f"unexpected fault address\n(fake: {what}: {len(data)} bytes, size {size})")
    return data[:size]


def _c_string(value: Any) -> str:
    if value is None:
        return ""
    raw = bytes(value)
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _split_jid(value: str) -> tuple[str, int, str]:
    user, _, server = value.partition("@")
    user, _, device = user.partition(":")
    return user, int(device) if device.isdigit() else 0, server or "s.whatsapp.net"


def _iso_ms(value: Any) -> int:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(datetime.fromisoformat(value).timestamp() * 1000)
    return int(time.time() * 1000)


class FakeGoLibrary:
    """The stand-in for ``neonize._binder.gocode`` (see the module docstring)."""

    def __init__(
        self,
        sim_url: str,
        *,
        timing: FakeGoTiming | None = None,
        fatal_text: str | None = "__fake_go_fatal__",
    ) -> None:
        self.sim_url = _ws_url(sim_url)
        self.timing = timing or FakeGoTiming()
        self.fatal_text = fatal_text
        self.mod: NeonizeModules = load_modules()
        self._real = self.mod.gocode
        self._maps = _GoMaps(self.timing)
        self._mx = threading.Lock()
        self._stats: dict[bytes, ClientStats] = {}
        self._leaked: list[sqlite3.Connection] = []  # stores of clients whose Neonize returned
        self.calls: list[tuple[str, bytes]] = []
        self._refs = itertools.count(1)

    # ---- for tests ---------------------------------------------------------------------

    def stats(self, uuid: bytes) -> ClientStats:
        with self._mx:
            return self._stats.setdefault(uuid, ClientStats())

    def leaked_stores(self) -> int:
        with self._mx:
            return len(self._leaked)

    def client(self, uuid: bytes) -> _Client | None:
        """The live client behind ``uuid`` (test access; not a Go map read)."""
        return self._maps.clients.get(uuid)

    def die(self, message: str = "fatal error: runtime: out of memory") -> NoReturn:
        """End the whole process as the Go runtime would."""
        go_fatal(message)

    def next_ref(self) -> str:
        return f"fake-{next(self._refs)}"

    def _called(self, name: str, uuid: bytes) -> None:
        with self._mx:
            self.calls.append((name, uuid))

    def _returned(self, client: _Client, err: str) -> bytes:
        with self._mx:
            if client.store is not None:
                self._leaked.append(client.store)  # goneonize never closes its container
        client.returned.set()
        return err.encode()

    # ---- the exports ---------------------------------------------------------------------

    def GetVersion(self) -> bytes:
        return GO_VERSION

    def Neonize(self, *args: Any) -> bytes:
        _arg(self._real.Neonize.argtypes, args, "Neonize")
        start = _Start.parse(args)
        self._called("Neonize", start.uuid)
        with self._maps.writing("Neonize", self.timing.neonize_write_hold):
            client = _Client(self, start)
            self._maps.stop_signal[start.uuid] = client.cancelled
            try:
                self.mod.reg.DeviceProps.FromString(start.device_props)
            except Exception as exc:  # proto.Unmarshal of devicePropsBuf
                return self._returned(client, f"proto: {exc}")
            err = client.open_store()
            self._maps.event_channel[start.uuid] = client.events
            if err:
                return self._returned(client, err)
            self._maps.clients[start.uuid] = client
        return self._returned(client, client.run())

    def Stop(self, *args: Any) -> bytes:
        _arg(self._real.Stop.argtypes, args, "Stop")
        uuid = bytes(args[0])
        self._called("Stop", uuid)
        with self._maps.reading("Stop"):
            client = self._maps.clients.get(uuid)
        if client is not None:
            client.disconnect()
        with self._maps.writing("Stop", self.timing.stop_write_hold):
            self._maps.clients.pop(uuid, None)
            cancel = self._maps.stop_signal.pop(uuid, None)
            if cancel is not None:
                cancel.set()
            self._maps.event_channel.pop(uuid, None)
        if client is not None:
            client.stopped()
        return b""

    def Disconnect(self, *args: Any) -> int:
        _arg(self._real.Disconnect.argtypes, args, "Disconnect")
        uuid = bytes(args[0])
        self._called("Disconnect", uuid)
        with self._maps.reading("Disconnect"):
            client = self._maps.clients.get(uuid)
        if client is not None:  # a nil *Client's Disconnect() returns at once
            client.disconnect()
        return 0

    def Logout(self, *args: Any) -> bytes:
        _arg(self._real.Logout.argtypes, args, "Logout")
        uuid = bytes(args[0])
        self._called("Logout", uuid)
        with self._maps.reading("Logout"):
            client = self._maps.clients.get(uuid)
        if client is None:
            return b"client is nil"
        return client.logout().encode()

    def PairPhone(self, *args: Any) -> bytes:
        _arg(self._real.PairPhone.argtypes, args, "PairPhone")
        uuid = bytes(args[0])
        self._called("PairPhone", uuid)
        ret = self.mod.pb.PairPhoneReturnFunction()
        try:
            params = self.mod.pb.PairPhoneParams.FromString(_read(args[1], args[2], "PairPhone"))
        except Exception as exc:
            ret.Error = f"proto: {exc}"
            return bytes(ret.SerializeToString())
        with self._maps.reading("PairPhone"):
            client = self._maps.clients.get(uuid)
        if client is None:
            ret.Error = PAIR_NIL
        else:
            code, error = client.pair_phone(str(params.phone))
            if error:
                ret.Error = error
            else:
                ret.Code = code
        return bytes(ret.SerializeToString())

    def SendMessage(self, *args: Any) -> bytes:
        _arg(self._real.SendMessage.argtypes, args, "SendMessage")
        uuid = bytes(args[0])
        self._called("SendMessage", uuid)
        ret = self.mod.pb.SendMessageReturnFunction()
        with self._maps.reading("SendMessage"):
            client = self._maps.clients.get(uuid)
        try:
            jid = self.mod.pb.JID.FromString(_read(args[1], args[2], "SendMessage JID"))
            message = self.mod.e2e.Message.FromString(_read(args[3], args[4], "SendMessage"))
        except Exception as exc:
            ret.Error = f"proto: {exc}"
            return bytes(ret.SerializeToString())
        if client is None:
            print("SendMessage: Error sending message: client is nil", flush=True)
            ret.Error = "client is nil"
            return bytes(ret.SerializeToString())
        message_id, error = client.send(jid, message)
        if error:
            ret.Error = error
        else:
            ret.SendResponse.CopyFrom(
                self.mod.pb.SendResponse(
                    ID=message_id,
                    Timestamp=int(time.time()),
                    ServerID=0,
                    DebugTimings=self.mod.pb.MessageDebugTimings(
                        Queue=0,
                        Marshal=0,
                        GetParticipants=0,
                        GetDevices=0,
                        GroupEncrypt=0,
                        PeerEncrypt=0,
                        Send=0,
                        Resp=0,
                        Retry=0,
                    ),
                )
            )
        return bytes(ret.SerializeToString())


@dataclass(frozen=True)
class _Start:
    """Neonize's arguments, read the way goneonize reads them."""

    db_path: str
    uuid: bytes
    log_level: str
    qr_cb: Any
    status_cb: Any
    event_cb: Any
    log_cb: Any
    subscribed: frozenset[int]
    device_props: bytes
    proxy: str | None

    @classmethod
    def parse(cls, args: tuple[Any, ...]) -> _Start:
        (db, uuid, jid_buf, jid_size, _new_device, level, qr_cb, status_cb, event_cb, log_cb,
         subs, subs_size, props, props_size, pair, pair_size, proxy) = args  # fmt: skip
        _read(jid_buf, jid_size, "Neonize JID")
        _read(pair, pair_size, "Neonize pairphone")
        proxy_address = None
        if proxy is not None:  # ctypes.byref(settings) or a POINTER to them
            settings = getattr(proxy, "_obj", None)
            settings = proxy.contents if settings is None else settings
            proxy_address = _c_string(settings.proxyAddress)
        return cls(
            db_path=_c_string(db),
            uuid=bytes(uuid),
            log_level=_c_string(level) or "INFO",
            qr_cb=qr_cb,
            status_cb=status_cb,
            event_cb=event_cb,
            log_cb=log_cb,
            subscribed=frozenset(_read(subs, subs_size, "Neonize subscribers")),
            device_props=_read(props, props_size, "Neonize DeviceProps"),
            proxy=proxy_address,
        )


def _ws_url(url: str) -> str:
    if url.startswith("http://") or url.startswith("https://"):
        url = "ws" + url[4:]
    if url.count("/") < 3:  # no path: the sim's device stream
        url = url.rstrip("/") + "/sim/ws"
    return url


class _Client:
    """One whatsmeow client + its goneonize glue, talking to the sim."""

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

    # ---- the store -----------------------------------------------------------------------

    def open_store(self) -> str:
        try:
            conn = sqlite3.connect(self.start.db_path, check_same_thread=False)
            self.store = conn
            conn.executescript(WHATSMEOW_DEVICE_SCHEMA)
            row = conn.execute("SELECT jid, sim_id, sim_secret FROM fake_go_device").fetchone()
        except sqlite3.Error as exc:
            return f"failed to upgrade database: {exc}"
        if row is not None:
            self.device = _Creds(*row)
            self.device_ready.set()
        return ""

    def save_device(self, jid: str, sim_id: str, secret: str) -> None:
        user, _, server = _split_jid(jid)
        creds = _Creds(f"{user}:{secrets.randbelow(60) + 2}@{server}", sim_id, secret)
        assert self.store is not None
        with self.store:
            self.store.execute(
                "INSERT OR REPLACE INTO whatsmeow_device (jid, registration_id, noise_key,"
                " identity_key, signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key,"
                " adv_details, adv_account_sig, adv_account_sig_key, adv_device_sig)"
                " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                (creds.jid, secrets.randbelow(2**31), *(secrets.token_bytes(32) for _ in range(3)),
                 secrets.token_bytes(64), secrets.token_bytes(32), b"adv", secrets.token_bytes(64),
                 secrets.token_bytes(32), secrets.token_bytes(64)),
            )  # fmt: skip
            self.store.execute(
                "INSERT OR REPLACE INTO fake_go_device VALUES (?, ?, ?)",
                (creds.jid, sim_id, secret),
            )
        self.device = creds
        self.device_ready.set()

    def delete_device(self) -> None:
        """whatsmeow's Store.Delete: the device row goes, the client has no id any more."""
        if self.store is not None:
            with self.store:
                self.store.execute("DELETE FROM whatsmeow_device")
                self.store.execute("DELETE FROM fake_go_device")
        self.device = None
        self.device_ready.clear()
        self.deleted = True

    # ---- Neonize's own thread --------------------------------------------------------------

    def run(self) -> str:
        err = self.connect()
        if err:
            self._log("ERROR", "Client", f"Failed to connect: {err}")
            return err
        if self.device is None:
            self.where = "QR loop"
            self._qr_loop()
        self._fetch_me()
        self.where = "event pump"
        try:
            self._pump()
        except _MarshalError as exc:  # CallbackFunction returns proto.Marshal's error
            return str(exc)
        return ""

    def _qr_loop(self) -> None:
        """``for evt := range qrChan``: blocks for good if the channel is never closed."""
        while True:
            item = self.qr.get()
            if item is _CLOSED:
                return
            kind, value = item
            callback = self.start.qr_cb if kind == "code" else self.start.status_cb
            callback(
                ctypes.create_string_buffer(self.uuid), ctypes.create_string_buffer(value.encode())
            )

    def _fetch_me(self) -> None:
        with self.lib._maps.reading("CallbackFunction"):
            self.lib._maps.event_channel.get(self.uuid)
        with self.lib._maps.reading("FetchMe"):
            client = self.lib._maps.clients.get(self.uuid)
        if client is None:  # clients[id].Store on a deleted client
            go_fatal(f"{NIL_PANIC}\n\ngoroutine (fake) [running]:\nmain.FetchMe(...)")
        self.where = "FetchMe"
        self.device_ready.wait()  # for cli.ID == nil { time.Sleep(...) }: forever after a timeout

    def _pump(self) -> None:
        device = self.device
        assert device is not None
        user, number, server = _split_jid(device.jid)
        me = self.pb.Device(
            JID=self.pb.JID(User=user, Server=server, Device=number, RawAgent=0, Integrator=0,
                            IsEmpty=False),
            PushName="", Platform="", BussinessName="", Initialized=True,
        )  # fmt: skip
        self._call_event(0, me)
        while not self.cancelled.is_set():
            try:
                code, msg = self.events.get(timeout=0.02)
            except queue.Empty:
                continue
            if self.cancelled.is_set():  # ctx.Done() won the select: this one is lost
                self._lost(code, msg)
                break
            self._call_event(code, msg)
        while True:
            try:
                self._lost(*self.events.get_nowait())
            except queue.Empty:
                return

    def _lost(self, code: int, msg: Any) -> None:
        if code == 17:
            self.stats.lost.append(str(msg.Info.ID))

    def _call_event(self, code: int, msg: Any) -> None:
        try:
            data = msg.SerializeToString()  # proto2: required fields must be set, as in Go
        except EncodeError as exc:
            raise _MarshalError(f"proto: required field not set: {exc}") from None
        if code == 17:
            self.stats.seen.append(str(msg.Info.ID))
        if not data:  # getBytesAndSize of an empty slice: NULL, 0
            self.start.event_cb(self.uuid, None, 0, code)
            return
        buf = ctypes.create_string_buffer(data, len(data))
        self.start.event_cb(self.uuid, ctypes.addressof(buf), len(data), code)

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
        """Into the QR channel; a status is its last item, then it is closed."""
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

    def stopped(self) -> None:
        """Stop deleted the client (strict: a QR loop in progress ends, FetchMe follows)."""
        self._qr_put(_CLOSED)

    # ---- whatsmeow: the socket ------------------------------------------------------------

    def connect(self) -> str:
        with self._socket_lock:
            if self.deleted:
                return "device was deleted"
            self._expected.clear()
            hello: dict[str, Any] = {
                "type": "hello",
                "login": "pairingCode" if self._pairing_phone else "qr",
                "phone": self._pairing_phone,
                "device": None,
                "session": self.start.db_path,
            }
            if self.device is not None:
                hello["device"] = {"id": self.device.sim_id, "secret": self.device.sim_secret}
            try:
                ws = connect(
                    self.lib.sim_url, open_timeout=self.t.dial_timeout, close_timeout=1.0,
                    proxy=None, compression=None, max_size=None, legacy=True,
                )  # fmt: skip
                ws.send(json.dumps(hello))
            except (OSError, WebSocketException, TimeoutError) as exc:
                return f"failed to dial whatsapp web websocket: {exc}"
            self.ws = ws
            self._connected_seen = False
            threading.Thread(
                target=self._read, args=(ws,), daemon=True, name="fake-go-read"
            ).start()
            return ""

    def disconnect(self) -> None:
        """whatsmeow Disconnect: waits for a dial, expects the close (no event, no reconnect)."""
        with self._socket_lock:
            self._expected.set()
            ws, self.ws = self.ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()

    def _read(self, ws: ClientConnection) -> None:
        try:
            for text in ws:
                frame = json.loads(text)
                if isinstance(frame, dict):
                    self._on_frame(ws, frame)
        except (OSError, WebSocketException, ValueError):
            pass
        self._on_closed(ws)

    def _on_closed(self, ws: ClientConnection) -> None:
        with self._socket_lock:
            current = self.ws is ws
            if current:
                self.ws = None
        if not current:
            return
        self._fail_pending("websocket disconnected before {what} returned response")
        if self._expected.is_set():
            return
        if self.device is None:  # the QR channel sees Disconnected: "timeout"
            self.dispatch(12, self.pb.Disconnected(status=True))
            self.qr_status("timeout")
            return
        self.dispatch(12, self.pb.Disconnected(status=True))
        self._auto_reconnect()

    def _auto_reconnect(self) -> None:
        def run() -> None:
            for errors in itertools.count():
                if self._expected.wait(errors * self.t.reconnect_step) or self.cancelled.is_set():
                    return
                if not self.connect():
                    return

        threading.Thread(target=run, daemon=True, name="fake-go-reconnect").start()

    def _send_frame(self, frame: dict[str, Any]) -> bool:
        ws = self.ws
        if ws is None:
            return False
        try:
            ws.send(json.dumps(frame))
            return True
        except (OSError, WebSocketException):
            return False

    # ---- whatsmeow: frames from the server ------------------------------------------------

    def _on_frame(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind = str(frame.get("type"))
        handler = getattr(self, f"_frame_{kind}", None)
        if handler is None:
            self._log("WARN", "Client", f"unhandled frame {kind}")
            return
        handler(ws, frame)

    def _frame_qr(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        if self._pairing_phone is not None:
            return
        self._qr_shown += 1
        if self._qr_shown > self.t.qr_codes:
            self._qr_timeout()
            return
        self._qr_put(("code", str(frame.get("code"))))
        if self._qr_shown == self.t.qr_codes:
            expires = _iso_ms(frame.get("expiresAt")) / 1000 - time.time()
            self._arm_qr_timeout(max(expires, 0.0))

    def _arm_qr_timeout(self, seconds: float) -> None:
        with self._mx:
            if self._qr_timer is not None:
                self._qr_timer.cancel()
            self._qr_timer = threading.Timer(seconds, self._qr_timeout)
            self._qr_timer.daemon = True
            self._qr_timer.start()

    def _qr_timeout(self) -> None:
        """whatsmeow ran out of QR codes: "timeout", then it disconnects the client."""
        self.qr_status("timeout")
        self.disconnect()

    def _frame_pairing_code(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer("pairing", frame)

    def _frame_paired(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        device = frame.get("device") or {}
        self.save_device(str(frame.get("jid")), str(device.get("id")), str(device.get("secret")))
        assert self.device is not None
        user, number, server = _split_jid(self.device.jid)
        jid = self.pb.JID(User=user, Server=server, Device=number, RawAgent=0, Integrator=0,
                          IsEmpty=False)  # fmt: skip
        status = self.pb.PairStatus(
            ID=jid, BusinessName="", Platform="", Status=self.pb.PairStatus.SUCCESS
        )
        self.dispatch(2, status)
        self.qr_status("success")

    def _frame_connected(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._connected_seen = True
        self._last_keepalive = time.monotonic()
        self.dispatch(3, self.pb.Connected(status=True))

    def _frame_message(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        text = str(frame.get("text", ""))
        if self.lib.fatal_text is not None and text == self.lib.fatal_text:
            go_fatal("fatal error: fake goneonize asked to die by an inbound message")
        message_id = str(frame.get("id"))
        if self.dispatch(17, self._message(frame, text)) and self._send_frame(
            {"type": "ack", "id": message_id}
        ):
            self.stats.acked.append(message_id)  # whatsmeow's receipt, after the handler

    def _message(self, frame: dict[str, Any], text: str) -> Any:
        chat = self._jid(str(frame.get("from", "")))
        sender = self._jid(str(frame["sender"])) if frame.get("sender") else chat
        alt = self._jid(str(frame["fromPn"])) if frame.get("fromPn") else self._jid("")
        source = self._source(chat, sender, alt, from_me=False)
        info = self.pb.MessageInfo(
            MessageSource=source, ID=str(frame.get("id")), ServerID=0, Type="text",
            Pushname="", Timestamp=_iso_ms(frame.get("ts")), Category="", Multicast=False,
            MediaType="", Edit="",
        )  # fmt: skip
        return self.pb.Message(
            Info=info, Message=self.e2e.Message(conversation=text), IsEphemeral=False,
            IsViewOnce=False, IsViewOnceV2=False, IsViewOnceV2Extension=False,
            IsDocumentWithCaption=False, IsLottieSticker=False, IsEdit=False,
            UnavailableRequestID="", RetryCount=0,
        )  # fmt: skip

    def _source(self, chat: Any, sender: Any, alt: Any, *, from_me: bool) -> Any:
        return self.pb.MessageSource(
            Chat=chat, Sender=sender, IsFromMe=from_me, IsGroup=chat.Server == "g.us",
            SenderAlt=alt, RecipientAlt=self._jid(""), BroadcastListOwner=self._jid(""),
        )  # fmt: skip

    def _jid(self, value: str) -> Any:
        if not value:
            return self.pb.JID(User="", Server="", RawAgent=0, Device=0, Integrator=0,
                               IsEmpty=True)  # fmt: skip
        user, number, server = _split_jid(value)
        return self.pb.JID(User=user, Server=server, RawAgent=0, Device=number, Integrator=0,
                           IsEmpty=False)  # fmt: skip

    def _frame_receipt(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind = _RECEIPTS.get(str(frame.get("status")), "DELIVERED")
        receipt = self.pb.Receipt(
            MessageSource=self._source(self._jid(""), self._jid(""), self._jid(""), from_me=True),
            MessageIDs=[str(frame.get("id"))], Timestamp=int(time.time()),
            Type=getattr(self.pb.Receipt, kind),
        )  # fmt: skip
        self.dispatch(18, receipt)

    def _frame_logged_out(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        if self._answer("logout", frame):
            return
        self._expected.set()
        reason = _LOGOUT_REASONS.get(int(frame.get("code") or 401), "LOGGED_OUT")
        event = self.pb.LoggedOut(
            OnConnect=not self._connected_seen, Reason=getattr(self.pb, reason)
        )
        self.dispatch(6, event)
        self.delete_device()
        self.qr_status("err-unexpected-state")

    def _frame_logout_failed(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer("logout", frame)

    def _frame_stream_replaced(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._expected.set()
        self.dispatch(7, self.pb.StreamReplaced())

    def _frame_client_outdated(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._expected.set()
        self.dispatch(10, self.pb.ClientOutdated())
        self.qr_status("err-client-outdated")

    def _frame_temp_ban(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._expected.set()
        expire = int(float(frame.get("retryAfter") or 0))
        code = int(frame.get("code") or 1)  # whatsmeow's TempBanReason (1..5)
        self.dispatch(8, self.pb.TemporaryBan(Code=code, Expire=expire))
        self.qr_status("err-unexpected-state")

    def _frame_keepalive_timeout(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        count = int(frame.get("errorCount") or 1)
        last = int(time.time() - (time.monotonic() - self._last_keepalive))
        self.dispatch(4, self.pb.KeepAliveTimeout(ErrorCount=count, LastSuccess=last))
        if time.monotonic() - self._last_keepalive > self.t.keepalive_max_fail:
            # keepalive.go: Disconnect(), resetExpectedDisconnect(), go autoReconnect()
            self.disconnect()
            self._expected.clear()
            self._auto_reconnect()

    def _frame_keepalive_restored(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._last_keepalive = time.monotonic()
        self.dispatch(5, self.pb.KeepAliveRestored())

    def _frame_disconnected(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            ws.close()  # the server ended the stream: _on_closed reports it

    def _frame_sent(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer(f"send:{frame.get('ref')}", frame)

    def _frame_send_error(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._answer(f"send:{frame.get('ref')}", frame)

    def _frame_error(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        self._log("ERROR", "Client", f"Unknown stream error: {frame.get('reason')}")

    def _frame_stopped(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        return

    # ---- whatsmeow: requests that wait for the server ----------------------------------------

    def _ask(self, key: str, frame: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
        with self._mx:
            fut = self._pending.setdefault(key, concurrent.futures.Future())
        try:
            if frame is not None and not self._send_frame(frame):
                return {"type": "error", "error": "websocket not connected"}
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            return {"type": "timeout"}
        finally:
            with self._mx:
                self._pending.pop(key, None)

    def _answer(self, key: str, frame: dict[str, Any]) -> bool:
        with self._mx:
            fut = self._pending.get(key)
        if fut is None or fut.done():
            return False
        fut.set_result(frame)
        return True

    def _fail_pending(self, text: str) -> None:
        with self._mx:
            pending = list(self._pending.items())
        for key, fut in pending:
            what = "message send" if key.startswith("send:") else "info query"
            if not fut.done():
                fut.set_result({"type": "closed", "error": text.format(what=what)})

    def logout(self) -> str:
        if self.device is None:
            return NOT_LOGGED_IN
        if self.ws is None:
            return "error sending logout request: websocket not connected"
        answer = self._ask("logout", {"type": "logout"}, self.t.iq_timeout)
        if answer["type"] == "logged_out":
            self.disconnect()
            self.delete_device()
            return ""
        if answer["type"] == "timeout":
            return "error sending logout request: info query timed out"
        return f"error sending logout request: {answer.get('error', 'server error')}"

    def pair_phone(self, phone: str) -> tuple[str, str]:
        digits = re.sub(r"\D", "", phone)
        if len(digits) <= 6:
            return "", "phone number too short"
        if digits.startswith("0"):
            return "", "international phone number required (must not start with 0)"
        if self.ws is None:
            return "", "websocket not connected"
        # The sim hands out pairing codes to a stream that asks for one in its hello.
        with self._socket_lock:
            old, self.ws = self.ws, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        self._pairing_phone = "+" + digits
        with self._mx:  # ready for the answer before the new stream can bring it
            self._pending["pairing"] = concurrent.futures.Future()
        err = self.connect()
        if err:
            return "", err
        answer = self._ask("pairing", None, self.t.iq_timeout)
        if answer["type"] != "pairing_code":
            return "", f"pairing code request failed: {answer.get('error', 'no answer')}"
        self._arm_qr_timeout(self.t.pairing_ttl)
        return str(answer.get("code")), ""

    def send(self, jid: Any, message: Any) -> tuple[str, str]:
        server, user = str(jid.Server), str(jid.User)
        if int(jid.Device) > 0:
            return "", "message recipient must be a user JID with no device part"
        if self.device is None:
            return "", NOT_LOGGED_IN
        if server not in _USER_SERVERS:
            return "", f"can't send message to unknown server {server}"
        to = f"{user}@{server}"
        if self.ws is None:
            if server == "s.whatsapp.net":
                return (
                    "",
                    f"failed to get user info for {to} to fill LID cache: websocket not connected",
                )
            return "", "failed to get device list: websocket not connected"
        text = str(message.conversation or message.extendedTextMessage.text or "")
        ref = self.lib.next_ref()
        frame = {"type": "send", "ref": ref, "to": to, "text": text}
        answer = self._ask(f"send:{ref}", frame, self.t.send_timeout)
        kind = answer["type"]
        if kind == "sent":
            return str(answer.get("id")), ""
        if kind == "timeout":
            return "", "timed out waiting for message send response"
        if kind == "send_error" and answer.get("reached") is False:
            error = str(answer.get("error", ""))
            if "not on whatsapp" in error.lower():
                return "", f"no LID found for {to} from server"
            return "", f"failed to get device list: {error}"
        if kind == "send_error":
            return "", f"server returned error 500 ({answer.get('error', '')})"
        if kind == "error":  # the frame could not be written: nothing left
            return "", "failed to send message node: websocket not connected"
        return "", str(
            answer.get("error", "websocket disconnected before message send returned response")
        )


def load_from_env() -> FakeGoLibrary:
    """The fake for an engine worker: the sim's URL in ``WAFLEET_FAKE_GO_SIM_URL``."""
    url = os.environ.get(SIM_URL_ENV)
    if not url:
        raise RuntimeError(f"{SIM_URL_ENV} is not set (the sim's ws:// or http:// URL)")
    return FakeGoLibrary(url, fatal_text=os.environ.get(FATAL_TEXT_ENV, "__fake_go_fatal__"))
