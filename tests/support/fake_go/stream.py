"""The client's connection to the sim: whatsmeow's websocket and the requests waiting on it.

``connect`` dials the sim's device stream with a synchronous websockets client and says
hello with the stored credentials, or the login it wants (QR or pairing code); a reader
thread hands each frame to ``_on_frame`` (see ``frames``). ``disconnect`` waits for a dial
in progress (whatsmeow's ``socketLock``) and expects the close: no event, no reconnect.
The stream closing unexpectedly gives ``Disconnected`` and whatsmeow's auto-reconnect
(waiting errors x ``reconnect_step``), or, before pairing, ends the QR loop with "timeout".
Requests (logout, pairing code, sends) wait in ``_pending`` for their answer frame, a
timeout, or the stream closing, and fail with whatsmeow's errors for each.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import json
import threading
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from support.fake_go.store import _Store


class _Stream(_Store):
    """whatsmeow's socket to the sim, and the requests waiting on it."""

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

    def _on_frame(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        """One frame from the server (``frames._Frames`` handles them)."""
        raise NotImplementedError

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
