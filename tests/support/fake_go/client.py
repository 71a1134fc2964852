"""``_Client``, one whatsmeow client with its goneonize glue, and ``Neonize``'s own thread.

``run`` is what ``Neonize`` does on the thread that called it, with the callbacks made the
way goneonize makes them:

- connect; with no device in the store, the QR loop (``for evt := range qrChan``): QR
  codes through the QR callback, every other item (statuses, "passkey-request") through
  the login-status callback; it blocks for good if the channel is never closed;
- ``FetchMe``: reads the maps (a nil pointer dereference if ``Stop`` deleted the client),
  then waits for a device id, for ever after a QR timeout;
- the event pump: code 0 (own ``Device``) first, then each queued event as a real pointer
  to its serialized protobuf and its size (NULL and 0 for an empty message), waiting for
  each callback to return. ``Stop`` cancels it and what is still queued is lost
  (``ClientStats.lost``); a proto2 message missing a required field ends ``Neonize`` with
  ``proto.Marshal``'s error.
"""

from __future__ import annotations

import ctypes
import queue
from typing import Any

from google.protobuf.message import EncodeError

from support.fake_go.channels import _CLOSED
from support.fake_go.convert import _split_jid
from support.fake_go.requests import _Requests
from support.fake_go.runtime import NIL_PANIC, go_fatal


class _MarshalError(Exception):
    """proto.Marshal failed in the event pump (a required field was not set)."""


class _Client(_Requests):
    """One whatsmeow client + its goneonize glue, talking to the sim."""

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
