"""The sim's device stream: JSON frames over a WebSocket or an in-process pipe.

Client -> server frames:
  {"type": "hello", "device": {"id", "secret"} | null, "login": "qr" | "pairingCode",
   "phone": "+40..."}                       (phone only for pairing-code login)
  {"type": "ack", "id": "<message id>"}
  {"type": "send", "ref": "<client ref>", "to": "<jid>", "text": "..."}
  {"type": "logout"}
Server -> client frames:
  {"type": "qr", "code", "expiresAt"}      {"type": "pairing_code", "code"}
  {"type": "paired", "device": {...}, "jid"} {"type": "connected", "jid"}
  {"type": "message", "id", "from", "text", "ts"}
  {"type": "sent", "ref", "id"}            {"type": "send_error", "ref", "error"}
  {"type": "receipt", "id", "status"}
  {"type": "logged_out", "reason"}         {"type": "stream_replaced"}
  {"type": "temp_ban", "retryAfter"}
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

Frame = dict[str, Any]


class ConnClosed(Exception):
    pass


class Conn(Protocol):
    async def send(self, frame: Frame) -> None:
        """Send one frame; raises ConnClosed if the stream is gone."""
        ...

    async def recv(self) -> Frame | None:
        """The next frame, or None once the stream is closed."""
        ...

    async def close(self) -> None: ...


_CLOSED: Frame = {"type": "__closed__"}


class _PipeState:
    closed = False


class _PipeEnd:
    def __init__(
        self, state: _PipeState, inbox: asyncio.Queue[Frame], outbox: asyncio.Queue[Frame]
    ) -> None:
        self._state = state
        self._inbox = inbox
        self._outbox = outbox

    async def send(self, frame: Frame) -> None:
        if self._state.closed:
            raise ConnClosed("pipe closed")
        # A JSON round trip keeps both ends from sharing mutable objects, as a socket would.
        self._outbox.put_nowait(json.loads(json.dumps(frame)))

    async def recv(self) -> Frame | None:
        frame = await self._inbox.get()
        if frame is _CLOSED:
            self._inbox.put_nowait(_CLOSED)  # every later recv sees the close too
            return None
        return frame

    async def close(self) -> None:
        if not self._state.closed:
            self._state.closed = True
            self._outbox.put_nowait(_CLOSED)
            self._inbox.put_nowait(_CLOSED)


def pipe() -> tuple[Conn, Conn]:
    """Two connected in-process ends: (client, server)."""
    state = _PipeState()
    a: asyncio.Queue[Frame] = asyncio.Queue()
    b: asyncio.Queue[Frame] = asyncio.Queue()
    return _PipeEnd(state, a, b), _PipeEnd(state, b, a)
