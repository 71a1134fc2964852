"""A device-stream server the test scripts frame by frame (``wafleet.sim.wire`` frames over
a loopback WebSocket), for driving the fake Go library without the whole sim."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
from typing import Any

from websockets.exceptions import WebSocketException
from websockets.sync.server import Server, ServerConnection, serve

Frame = dict[str, Any]


class StubConn:
    """One device stream: the fake's hello, then what the test sends and receives."""

    def __init__(self, ws: ServerConnection, hello: Frame) -> None:
        self.ws = ws
        self.hello = hello
        self.inbox: queue.Queue[Frame] = queue.Queue()
        self.closed = threading.Event()

    def send(self, frame: Frame) -> None:
        self.ws.send(json.dumps(frame))

    def send_all(self, frames: list[Frame]) -> None:
        for frame in frames:
            self.send(frame)

    def close(self) -> None:
        with contextlib.suppress(WebSocketException):
            self.ws.close()

    def recv(self, kind: str, timeout: float = 10.0) -> Frame:
        """The next frame of type ``kind`` the fake sent (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind!r} frame within {timeout} s")
            try:
                frame = self.inbox.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if frame.get("type") == kind:
                return frame

    async def arecv(self, kind: str, timeout: float = 10.0) -> Frame:
        return await asyncio.to_thread(self.recv, kind, timeout)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        return self.closed.wait(timeout)


class StubSim:
    """Accepts device streams on 127.0.0.1; the test takes each with ``accept()``."""

    def __init__(self) -> None:
        self._accepted: queue.Queue[StubConn] = queue.Queue()
        self.conns: list[StubConn] = []
        self._server: Server = serve(self._handle, "127.0.0.1", 0, compression=None)
        self.port = int(self._server.socket.getsockname()[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/sim/ws"

    def _handle(self, ws: ServerConnection) -> None:
        try:
            hello = json.loads(ws.recv(timeout=10))
        except (TimeoutError, WebSocketException, ValueError):
            return
        conn = StubConn(ws, hello)
        self.conns.append(conn)
        self._accepted.put(conn)
        try:
            for text in ws:
                conn.inbox.put(json.loads(text))
        except (WebSocketException, ValueError, OSError):
            pass
        finally:
            conn.closed.set()

    def accept(self, timeout: float = 10.0) -> StubConn:
        try:
            return self._accepted.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no device stream within {timeout} s") from None

    async def aaccept(self, timeout: float = 10.0) -> StubConn:
        return await asyncio.to_thread(self.accept, timeout)

    def pending(self) -> int:
        return self._accepted.qsize()

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self._server.shutdown()
