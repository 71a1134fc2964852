"""``FakeGoLibrary``: the stand-in for ``neonize._binder.gocode``, the library's exports.

It has the exports the engine calls (``Neonize``, ``Stop``, ``Disconnect``, ``Logout``,
``PairPhone``, ``SendMessage``, ``GetVersion``). Each takes its arguments the way the
ctypes function does (checked against neonize's own ``argtypes``; buffers are read through
their pointers for the given sizes), touches goneonize's unlocked maps as the real one does
(``runtime._GoMaps``) and returns what the function returns after neonize's ``errcheck``
hooks (``bytes``). Unknown client ids answer what the shipped library answers ("client is
nil", ...); every ``Neonize`` that returns keeps its store open (``leaked_stores``).

For tests: ``stats``, ``calls``, ``client`` and ``die``; ``load_from_env`` builds the fake
inside an engine worker from ``WAFLEET_FAKE_GO_SIM_URL``.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from typing import Any, NoReturn

from support.fake_go.client import _Client
from support.fake_go.config import (
    FATAL_TEXT_ENV,
    GO_VERSION,
    PAIR_NIL,
    SIM_URL_ENV,
    ClientStats,
    FakeGoTiming,
)
from support.fake_go.convert import _arg, _read, _Start, _ws_url
from support.fake_go.runtime import _GoMaps, go_fatal
from wafleet_connector.engine.ffi import NeonizeModules, load_modules


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
        # A passkey asked for a pairing code also puts "passkey-request" in the QR channel
        # (wafleet asks for the code on a QR session); False: only whatsmeow's log lines.
        self.pairing_passkey_event = True
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


def load_from_env() -> FakeGoLibrary:
    """The fake for an engine worker: the sim's URL in ``WAFLEET_FAKE_GO_SIM_URL``."""
    url = os.environ.get(SIM_URL_ENV)
    if not url:
        raise RuntimeError(f"{SIM_URL_ENV} is not set (the sim's ws:// or http:// URL)")
    return FakeGoLibrary(url, fatal_text=os.environ.get(FATAL_TEXT_ENV, "__fake_go_fatal__"))
