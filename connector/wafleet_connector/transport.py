"""The transport interface: one WhatsApp session, whatever drives it.

A transport opens sessions. A session reports what happens to it as events
through the sink it was opened with, and accepts a few commands (send, log out,
stop). Reconnect policy lives in the session manager, not here: once a session
has reported a final event (``FINAL_EVENTS``: `Disconnected`, `LoggedOut`,
`TemporaryBan`, `StreamReplaced`, `ClientOutdated`, `PasskeyRequired`) it is
finished and the manager opens a new one when it decides to. `KeepAliveTimeout` and
`KeepAliveRestored` are not final: the stream is unwell (or well again) and the library
itself recovers it; a `Connected` may follow a `KeepAliveTimeout` without any
`Disconnected` between.

Contract for inbound messages: the transport acknowledges a message to
WhatsApp only after ``await sink(InboundMessage(...))`` returned without
raising. The sink makes the message durable first, so a crash at any point
loses nothing (WhatsApp redelivers what was not acknowledged). A session keeps
delivering inbound messages while it stops: ``stop()`` and ``logout()`` return only
once every message that reached the transport went through the sink (or the stop
timeout ran out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

LoginMethod = Literal["qr", "pairingCode"]


@dataclass(frozen=True)
class SessionSpec:
    """What a transport needs to run one account's session."""

    account_id: str
    phone: str  # E.164, e.g. "+40712345678"
    login: LoginMethod
    session_path: Path  # the account's own session store file (created 0600)


@dataclass(frozen=True)
class QRCode:
    """A new QR code to show; the previous one is no longer valid."""

    code: str
    expires_at: datetime


@dataclass(frozen=True)
class PairingCode:
    code: str


@dataclass(frozen=True)
class Paired:
    """The device was linked to a phone (by QR scan or pairing code)."""

    jid: str


@dataclass(frozen=True)
class Connected:
    jid: str


@dataclass(frozen=True)
class Disconnected:
    """The stream ended for a reason that a reconnect may cure."""

    reason: str
    code: int | None = None


@dataclass(frozen=True)
class LoggedOut:
    """The device was unlinked: the session store is useless, a new link is needed."""

    reason: str
    code: int | None = None


@dataclass(frozen=True)
class StreamReplaced:
    """Another client opened this device's stream; WhatsApp closed ours."""

    reason: str = "stream_replaced"


@dataclass(frozen=True)
class ClientOutdated:
    """WhatsApp refuses this client version (connect failure 405): an upgrade is needed."""

    reason: str = "client_outdated"
    code: int = 405


@dataclass(frozen=True)
class PasskeyRequired:
    """The phone asked for a passkey (WebAuthn) to link this device, which wafleet cannot
    answer (neonize 0.5.2 exports nothing to): the link cannot complete. Final.

    ``reason`` names the signal: the QR channel's "passkey-request", or a whatsmeow log
    line (the pairing-code flow, where neonize may pass no passkey event on).
    """

    reason: str = "passkey-request"


@dataclass(frozen=True)
class KeepAliveTimeout:
    """Keepalive pings go unanswered; the stream may be dead. Not final."""

    error_count: int = 1


@dataclass(frozen=True)
class KeepAliveRestored:
    """Keepalive pings are answered again after a `KeepAliveTimeout`. Not final."""


@dataclass(frozen=True)
class TemporaryBan:
    reason: str
    retry_after: float  # seconds


@dataclass(frozen=True)
class InboundMessage:
    wa_id: str
    chat_jid: str  # the contact (thread) jid
    sender_jid: str
    text: str
    timestamp: datetime


@dataclass(frozen=True)
class Receipt:
    wa_id: str
    status: str  # delivered | read | played


TransportEvent = (
    QRCode
    | PairingCode
    | Paired
    | Connected
    | Disconnected
    | LoggedOut
    | TemporaryBan
    | StreamReplaced
    | ClientOutdated
    | PasskeyRequired
    | KeepAliveTimeout
    | KeepAliveRestored
    | InboundMessage
    | Receipt
)

EventSink = Callable[[TransportEvent], Awaitable[None]]

FINAL_EVENTS = (
    Disconnected,
    LoggedOut,
    TemporaryBan,
    StreamReplaced,
    ClientOutdated,
    PasskeyRequired,
)

# Disconnected reasons that mean "nobody linked the device before the codes ran out":
# not a reconnect, but the QR-loop guard (a new attempt would open a second connection).
LINK_TIMEOUTS = frozenset({"qr_timeout", "pairing_timeout"})


class SendError(Exception):
    """A send failed. ``reached`` tells whether WhatsApp may have received it."""

    def __init__(self, message: str, *, reached: bool) -> None:
        super().__init__(message)
        self.reached = reached


class LogoutError(Exception):
    """The device could not be unlinked (or the unlink was not confirmed): it is still
    linked, and its session store must be kept so that the logout can be retried."""


class Session(Protocol):
    async def send_text(self, to_jid: str, text: str) -> str:
        """Send a text message; return WhatsApp's message id. Raises SendError."""
        ...

    async def logout(self) -> None:
        """Unlink the device from the phone's account, then end the session.

        Returns once WhatsApp confirmed the unlink. Raises LogoutError if it could
        not be confirmed (not connected, refused, timed out): the session is ended,
        the device is still linked, and nothing after this reports a final event.
        """
        ...

    async def stop(self) -> None:
        """End the session, keeping the device linked. Idempotent, bounded in time."""
        ...


class Transport(Protocol):
    name: str

    async def open(self, spec: SessionSpec, sink: EventSink) -> Session:
        """Start connecting and return at once; progress arrives through ``sink``."""
        ...

    async def close(self) -> None:
        """Release what the transport holds once all sessions are stopped."""
        ...
