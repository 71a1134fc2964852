"""The worker's side of the device stream: transport events as frames, hellos as specs.

The frames are those of ``wafleet.sim.wire``, so the connector reads a worker exactly as
it reads the simulated WhatsApp (``wafleet_connector.frame_client``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from wafleet.sim.wire import Frame
from wafleet_connector.transport import (
    ClientOutdated,
    Connected,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    Paired,
    PairingCode,
    PasskeyRequired,
    QRCode,
    Receipt,
    SessionSpec,
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

LOGINS = ("qr", "pairingCode")


class BadHello(ValueError):
    """The first frame of a stream is not a usable hello."""


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def frame_of(event: TransportEvent) -> Frame:
    """The frame that carries ``event`` to the connector."""
    if isinstance(event, InboundMessage):
        return {
            "type": "message",
            "id": event.wa_id,
            "from": event.chat_jid,
            "sender": event.sender_jid,
            "text": event.text,
            "ts": _iso(event.timestamp),
        }
    if isinstance(event, QRCode):
        return {"type": "qr", "code": event.code, "expiresAt": _iso(event.expires_at)}
    if isinstance(event, PairingCode):
        return {"type": "pairing_code", "code": event.code}
    if isinstance(event, Paired):
        return {"type": "paired", "jid": event.jid}
    if isinstance(event, Connected):
        return {"type": "connected", "jid": event.jid}
    if isinstance(event, Receipt):
        return {"type": "receipt", "id": event.wa_id, "status": event.status}
    if isinstance(event, LoggedOut):
        return {"type": "logged_out", "reason": event.reason, "code": event.code}
    if isinstance(event, TemporaryBan):
        return {"type": "temp_ban", "retryAfter": event.retry_after}
    if isinstance(event, StreamReplaced):
        return {"type": "stream_replaced"}
    if isinstance(event, ClientOutdated):
        return {"type": "client_outdated"}
    if isinstance(event, PasskeyRequired):
        return {"type": "passkey_request", "reason": event.reason}
    if isinstance(event, KeepAliveTimeout):
        return {"type": "keepalive_timeout", "errorCount": event.error_count}
    if isinstance(event, KeepAliveRestored):
        return {"type": "keepalive_restored"}
    if isinstance(event, Disconnected):
        return {"type": "disconnected", "reason": event.reason, "code": event.code}
    raise TypeError(f"no frame for {type(event).__name__}")


def spec_of_hello(hello: Frame | None, sessions_dir: Path | None) -> SessionSpec:
    """A hello frame as the spec of the session it asks for; BadHello says what is wrong."""
    if hello is None or hello.get("type") != "hello":
        raise BadHello("the first frame must be a hello")
    account, phone, session = hello.get("account"), hello.get("phone"), hello.get("session")
    login = hello.get("login")
    if not isinstance(account, str) or not account:
        raise BadHello("hello needs 'account'")
    if not isinstance(phone, str) or not phone.startswith("+"):
        raise BadHello("hello needs 'phone' in E.164")
    if login not in LOGINS:
        raise BadHello(f"hello 'login' must be one of {', '.join(LOGINS)}")
    if not isinstance(session, str) or not session:
        raise BadHello("hello needs 'session' (the session store path)")
    path = Path(session)
    if sessions_dir is not None and path.resolve().parent != sessions_dir.resolve():
        raise BadHello("hello 'session' is outside the sessions directory")
    return SessionSpec(account_id=account, phone=phone, login=login, session_path=path)
