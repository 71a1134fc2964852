"""The client side of the device stream (``wafleet.sim.wire``): one session per connection.

Two servers speak the protocol: the simulated WhatsApp and the connector's own neonize
engine workers. What differs between them is only how a session finds its device
(``Credentials``) and where it dials (``Dialer``); everything else, from the inbound
acknowledgement to the logout confirmation, is this one class, covered by the sim tests.

Inbound messages: a message frame goes to the sink (which makes it durable) and only
then is acknowledged. A session keeps doing so while it stops: ``stop()`` asks the
server to end the stream, journals what still arrives, and returns on "stopped".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from wafleet.core.models import parse_iso
from wafleet.sim.wire import Conn, ConnClosed, Frame
from wafleet_connector.transport import (
    FINAL_EVENTS,
    ClientOutdated,
    Connected,
    Disconnected,
    EventSink,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    LogoutError,
    Paired,
    PairingCode,
    PasskeyRequired,
    QRCode,
    Receipt,
    SendError,
    SessionSpec,
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

logger = logging.getLogger(__name__)

Dialer = Callable[[SessionSpec], Awaitable[Conn]]
LID_SERVER = "@lid"


class Credentials(Protocol):
    """How a session names its device to the server, and keeps what linking gave it."""

    async def hello(self, spec: SessionSpec) -> Frame: ...

    async def paired(self, spec: SessionSpec, frame: Frame) -> None: ...


@dataclass(frozen=True)
class FrameTimeouts:
    dial: float = 10.0
    send: float = 15.0  # no "sent" or "send_error" by then: the send is ambiguous
    stop: float = 3.0  # "stopped" by then, or the stream is closed anyway
    logout: float = 20.0  # "logged_out" by then, or the unlink is not confirmed


def _simple(frame: Frame) -> TransportEvent | None:
    """Frames that map to an event without any session state."""
    kind = frame.get("type")
    if kind == "qr":
        expires = parse_iso(frame.get("expiresAt")) or datetime.now(UTC)
        return QRCode(code=str(frame["code"]), expires_at=expires)
    if kind == "pairing_code":
        return PairingCode(code=str(frame["code"]))
    if kind == "receipt":
        return Receipt(wa_id=str(frame["id"]), status=str(frame["status"]))
    if kind == "logged_out":
        code = frame.get("code")
        return LoggedOut(
            reason=str(frame.get("reason")), code=code if isinstance(code, int) else None
        )
    if kind == "stream_replaced":
        return StreamReplaced()
    if kind == "client_outdated":
        return ClientOutdated()
    if kind == "temp_ban":
        return TemporaryBan(reason="temp_ban", retry_after=float(frame.get("retryAfter", 60)))
    if kind == "passkey_request":
        return PasskeyRequired(reason=str(frame.get("reason") or "passkey-request"))
    if kind == "keepalive_timeout":
        return KeepAliveTimeout(error_count=int(frame.get("errorCount", 1)))
    if kind == "keepalive_restored":
        return KeepAliveRestored()
    if kind == "disconnected":
        code = frame.get("code")
        return Disconnected(
            reason=str(frame.get("reason") or "disconnected"),
            code=code if isinstance(code, int) else None,
        )
    if kind == "error":
        return Disconnected(reason=f"refused: {frame.get('reason')}")
    return None


def inbound_of(frame: Frame) -> InboundMessage:
    """A message frame as an InboundMessage; LID-addressed contacts land on their number."""
    chat = str(frame["from"])
    phone_jid = frame.get("fromPn")
    if chat.endswith(LID_SERVER) and isinstance(phone_jid, str) and phone_jid:
        chat = phone_jid
    sender = frame.get("sender")
    return InboundMessage(
        wa_id=str(frame["id"]),
        chat_jid=chat,
        sender_jid=str(sender) if isinstance(sender, str) and sender else chat,
        text=str(frame.get("text", "")),
        timestamp=parse_iso(frame.get("ts")) or datetime.now(UTC),
    )


class FrameSession:
    def __init__(
        self,
        spec: SessionSpec,
        sink: EventSink,
        dialer: Dialer,
        credentials: Credentials,
        timeouts: FrameTimeouts,
    ) -> None:
        self.spec = spec
        self._sink = sink
        self._dialer = dialer
        self._credentials = credentials
        self._timeouts = timeouts
        self._conn: Conn | None = None
        self._connected = False
        self._finished = False  # no more status events: a final one came, or we stop
        self._next_ref = 0
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._logout: asyncio.Future[str | None] | None = None
        self._ended = asyncio.Event()  # the stream is over (closed, "stopped" or final)
        self._task = asyncio.create_task(self._run(), name=f"frame-session-{spec.account_id}")

    # ----- the stream ----------------------------------------------------------------
    async def _run(self) -> None:
        try:
            hello = await self._credentials.hello(self.spec)
            self._conn = await asyncio.wait_for(self._dialer(self.spec), self._timeouts.dial)
            await self._conn.send(hello)
            while (frame := await self._conn.recv()) is not None:
                if not await self._handle(frame):
                    break
        except (OSError, TimeoutError, ConnClosed) as exc:
            await self._emit(Disconnected(reason=f"connect_failed: {exc or type(exc).__name__}"))
        except Exception as exc:  # a malformed frame must not kill the runner's session
            logger.exception("device stream failed", extra={"account": self.spec.account_id})
            await self._emit(Disconnected(reason=f"stream_error: {type(exc).__name__}"))
        finally:
            self._connected = False
            self._fail_waiters()
            if self._conn is not None:
                await self._conn.close()
            self._ended.set()
        await self._emit(Disconnected(reason="connection_lost"))

    def _fail_waiters(self) -> None:
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(SendError("stream closed during send", reached=True))
        if self._logout is not None and not self._logout.done():
            self._logout.set_result("the stream closed before WhatsApp confirmed the unlink")

    async def _handle(self, frame: Frame) -> bool:
        """Handle one frame; False ends the stream."""
        kind = frame.get("type")
        if kind == "message":
            await self._inbound(frame)
        elif kind in ("sent", "send_error"):
            self._answer_send(frame)
        elif kind == "paired":
            await self._credentials.paired(self.spec, frame)
            await self._emit(Paired(jid=str(frame["jid"])))
        elif kind == "connected":
            self._connected = True
            await self._emit(Connected(jid=str(frame["jid"])))
        elif kind == "stopped":
            return False
        elif kind == "logged_out" and self._logout is not None:
            if not self._logout.done():
                self._logout.set_result(None)
            return False
        elif kind == "logout_failed" and self._logout is not None:
            if not self._logout.done():
                self._logout.set_result(str(frame.get("error") or "refused"))
        else:
            event = _simple(frame)
            if event is None:
                logger.debug("unknown frame ignored", extra={"type": str(kind)[:32]})
                return True
            if isinstance(event, KeepAliveTimeout):
                self._connected = False
            elif isinstance(event, KeepAliveRestored):
                self._connected = True
            await self._emit(event)
            return not isinstance(event, FINAL_EVENTS)
        return True

    async def _emit(self, event: TransportEvent) -> None:
        if self._finished:
            return
        if isinstance(event, FINAL_EVENTS):
            self._finished = True
        await self._sink(event)

    async def _inbound(self, frame: Frame) -> None:
        message = inbound_of(frame)
        try:
            await self._sink(message)
        except Exception:
            # Not acknowledged: the server keeps it and redelivers it on the next stream.
            logger.exception("inbound message not stored; left unacknowledged")
            return
        if self._conn is not None:
            with contextlib.suppress(ConnClosed):
                await self._conn.send({"type": "ack", "id": message.wa_id})

    def _answer_send(self, frame: Frame) -> None:
        waiter = self._waiting.pop(str(frame.get("ref")), None)
        if waiter is None or waiter.done():
            return
        if frame.get("type") == "sent":
            waiter.set_result(str(frame["id"]))
        else:
            reached = frame.get("reached") is True
            waiter.set_exception(SendError(str(frame.get("error")), reached=reached))

    # ----- commands --------------------------------------------------------------------
    async def send_text(self, to_jid: str, text: str) -> str:
        if not self._connected or self._conn is None or self._finished:
            raise SendError("not connected", reached=False)
        self._next_ref += 1
        ref = str(self._next_ref)
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[ref] = waiter
        try:
            await self._conn.send({"type": "send", "ref": ref, "to": to_jid, "text": text})
        except ConnClosed:
            self._waiting.pop(ref, None)
            raise SendError("stream closed before the send", reached=False) from None
        try:
            return await asyncio.wait_for(waiter, self._timeouts.send)
        except TimeoutError:
            raise SendError("no answer from WhatsApp after the send", reached=True) from None
        finally:
            self._waiting.pop(ref, None)

    async def logout(self) -> None:
        if self._conn is None or not self._connected or self._finished:
            await self.stop()
            raise LogoutError("the session is not connected, so the device cannot be unlinked")
        self._finished = True  # what follows is the answer to the logout, not news
        self._logout = asyncio.get_running_loop().create_future()
        error: str | None
        try:
            await self._conn.send({"type": "logout"})
            error = await asyncio.wait_for(asyncio.shield(self._logout), self._timeouts.logout)
        except ConnClosed:
            error = "the stream closed before the logout was sent"
        except TimeoutError:
            error = f"WhatsApp did not confirm the unlink within {self._timeouts.logout:.0f} s"
        await self.stop()
        if error is not None:
            raise LogoutError(error)

    async def stop(self) -> None:
        """End the stream, keeping the device; inbound messages on their way are journaled."""
        self._finished = True
        if not self._ended.is_set() and self._conn is not None:
            with contextlib.suppress(ConnClosed):
                await self._conn.send({"type": "stop"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), self._timeouts.stop)
        if self._conn is not None:
            await self._conn.close()
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


class FrameTransport:
    """Sessions over the device stream; ``name`` is what the settings call it."""

    def __init__(
        self,
        name: str,
        dialer: Dialer,
        credentials: Credentials,
        timeouts: FrameTimeouts | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._dialer = dialer
        self._credentials = credentials
        self._timeouts = timeouts or FrameTimeouts()
        self._on_close = on_close

    async def open(self, spec: SessionSpec, sink: EventSink) -> FrameSession:
        return FrameSession(spec, sink, self._dialer, self._credentials, self._timeouts)

    async def close(self) -> None:
        if self._on_close is not None:
            await self._on_close()
