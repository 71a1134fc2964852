"""A webhook receiver on loopback that fails on purpose: what the delivery tests send to.

It answers each request by a seeded draw: ``fail`` of them with 500, ``hang`` of them only
after ``hang_seconds`` (past the sender's timeout, so the sender gives up), the rest 200.
Every request is recorded (headers, body, the answer it got), so a test can check what
reached it, what it accepted, and every signature.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook

INCOMPLETE = -1  # the request ended before its body did: its sender was killed


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: str
    status: int  # what the receiver answered: 200, 500, 0 for a hang, -1 cut off (INCOMPLETE)
    at: float
    verified: str  # "ok", or why the standardwebhooks package refused the signature

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.body)
        return event

    @property
    def accepted(self) -> bool:
        return self.status == 200


@dataclass
class Receiver:
    fail: float = 0.0
    hang: float = 0.0
    hang_seconds: float = 2.0
    status: int | None = None  # answer this to everything (e.g. 410), when set
    seed: int = 12345
    secret: str | None = None  # set once the webhook is registered: checked on arrival
    deliveries: list[Delivery] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)  # webhook-id -> requests now
    overlaps: list[str] = field(default_factory=list)  # ids delivered twice at one moment
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(init=False)
    port: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _draw(self) -> int:
        with self._lock:
            if self.status is not None:
                return self.status
            roll = self._random.random()
        if roll < self.hang:
            return 0
        if roll < self.hang + self.fail:
            return 500
        return 200

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def enter(self, event_id: str) -> None:
        with self._lock:
            self.in_flight[event_id] = self.in_flight.get(event_id, 0) + 1
            if self.in_flight[event_id] > 1:
                self.overlaps.append(event_id)

    def leave(self, event_id: str) -> None:
        with self._lock:
            self.in_flight[event_id] -= 1

    def verify(self, body: str, headers: dict[str, str]) -> str:
        """Check the signature now (the library also checks the timestamp is recent)."""
        if self.secret is None:
            return "no secret set"
        try:
            Webhook(self.secret).verify(body, headers)
        except Exception as exc:  # the library raises its own errors, and ValueError
            return f"{type(exc).__name__}: {exc}"
        return "ok"

    def snapshot(self) -> list[Delivery]:
        """Every request that reached the receiver whole (a cut-off one is no delivery)."""
        with self._lock:
            return [d for d in self.deliveries if d.status != INCOMPLETE]

    def cut_off(self) -> int:
        with self._lock:
            return sum(1 for d in self.deliveries if d.status == INCOMPLETE)

    def accepted_events(self) -> dict[str, dict[str, Any]]:
        """Event id -> event, for the deliveries answered 200."""
        return {d.headers["webhook-id"]: d.event for d in self.snapshot() if d.accepted}


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if len(raw) < length:  # the sender died mid-request (a SIGKILL): no delivery
                receiver.record(Delivery(headers, "", INCOMPLETE, time.monotonic(), "incomplete"))
                return
            body = raw.decode()
            event_id = headers.get("webhook-id", "")
            receiver.enter(event_id)
            try:
                status = receiver._draw()
                verified = receiver.verify(body, headers)
                receiver.record(Delivery(headers, body, status, time.monotonic(), verified))
                if status == 0:
                    time.sleep(receiver.hang_seconds)
                    status = 200  # too late: the sender stopped waiting
            finally:
                receiver.leave(event_id)
            try:
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up on a hang

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: when more connections than that arrive at once
    # (a dispatcher opening its pool) the kernel drops their SYNs and the senders wait a
    # whole second to retransmit. Web servers listen with a backlog in the hundreds.
    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender that closed its connection (a kill, a timeout) is not news."""


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
