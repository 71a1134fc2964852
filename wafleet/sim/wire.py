"""The device stream: JSON frames over a WebSocket, a Unix socket or an in-process pipe.

One connection carries one device session. Two servers speak it: the simulated
WhatsApp (``wafleet.sim.service``) and the connector's neonize engine workers
(``wafleet_connector.engine.worker``), so the connector has one client for both.

Client -> server frames:
  {"type": "hello", "login": "qr" | "pairingCode", "phone": "+40...",
   "device": {"id", "secret"} | null,      sim: the credentials kept in the session file
   "session": "/path/acc.db", "account": "<id>"}    engine worker: the session store
  {"type": "ack", "id"}                     the inbound message is durable; forget it
  {"type": "send", "ref", "to", "text"}
  {"type": "logout"}                        unlink the device: answered by "logged_out"
                                            (confirmed) or "logout_failed" (still linked)
  {"type": "stop"}                          end the session, keep the device: messages
                                            already on their way are still sent (ack
                                            them), then "stopped", then the stream closes
Server -> client frames:
  {"type": "qr", "code", "expiresAt"}       {"type": "pairing_code", "code"}
  {"type": "paired", "jid", "device"?}      device: sim credentials for the session file
  {"type": "connected", "jid"}
  {"type": "message", "id", "from", "text", "ts", "sender"?, "fromPn"?}
        from: the chat jid, "<lid>@lid" for a contact WhatsApp addresses by LID;
        fromPn: that contact's phone-number jid when it is known; sender: group sender
  {"type": "sent", "ref", "id"}             {"type": "send_error", "ref", "error", "reached"}
        reached: false when nothing was written to WhatsApp (safe to send again)
  {"type": "receipt", "id", "status"}       status: delivered | read | played
  {"type": "logged_out", "reason", "code"?} {"type": "logout_failed", "error"}
  {"type": "stream_replaced"}               another client took this device's stream
  {"type": "client_outdated"}               WhatsApp refuses this client version (405)
  {"type": "temp_ban", "retryAfter"}
  {"type": "passkey_request", "reason"?}   the phone asked for a passkey to link the device
        (WhatsApp's passkey_prologue_request); final for wafleet, which cannot answer it.
        reason (engine workers): the signal neonize gave
  {"type": "keepalive_timeout", "errorCount"}    {"type": "keepalive_restored"}
        not final: the stream is unwell, then well again (no "connected" in between)
  {"type": "disconnected", "reason", "code"?}    the stream ended; a reconnect may cure it
  {"type": "stopped"}                       the answer to "stop": nothing more follows
  {"type": "error", "reason"}
A stream that closes without a final frame counts as "disconnected".
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
