"""Pure functions for the neonize transport: neonize protobuf events -> transport events.

Nothing here touches the Go core; the functions take neonize protobuf messages
(``neonize.proto.Neonize_pb2``, untyped, hence ``Any``) and return the events of
``wafleet_connector.transport``. Facts relied on (neonize 0.5.2, goneonize
``utils/encoder.go``): ``MessageInfo.Timestamp`` is in milliseconds,
``TemporaryBan.Expire`` in seconds, and ``ConnectFailureReason`` is neonize's
own enum, translated back here to WhatsApp's numeric codes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from wafleet_connector.transport import (
    ClientOutdated,
    Connected,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    Paired,
    Receipt,
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
_SKIPPED_SERVERS = frozenset({"broadcast", "newsletter"})

# neonize ConnectFailureReason name -> whatsmeow/WhatsApp numeric code.
CONNECT_FAILURE_CODES: dict[str, int] = {
    "GENERIC": 400,
    "LOGGED_OUT": 401,
    "TEMP_BANNED": 402,
    "MAIN_DEVICE_GONE": 403,
    "CLIENT_OUTDATED": 405,
    "UNKNOWN_LOGOUT": 406,
    "BAD_USER_AGENT": 409,
    "INTERNAL_SERVER_ERROR": 500,
    "EXPERIMENTAL": 501,
    "SERVICE_UNAVAILABLE": 503,
}
# Reasons for which whatsmeow's own ConnectFailureReason.IsLoggedOut() is true.
LOGOUT_REASONS = frozenset({"LOGGED_OUT", "MAIN_DEVICE_GONE", "UNKNOWN_LOGOUT"})
RECEIPT_STATUS = {"DELIVERED": "delivered", "READ": "read", "PLAYED": "played"}

# Errors whatsmeow (send.go, client.go, socket/) and goneonize return before the message
# node was written to the socket: nothing reached WhatsApp, sending again is safe. A bare
# "websocket not connected" / "frame socket is closed" is NOT here: retryFrame returns
# those after the first write, when the reconnect to resend fails.
_SEND_NOT_REACHED = (
    "client is nil",  # ErrClientIsNil (also goneonize's answer for an unknown client)
    "failed to send message node: websocket not connected",  # no socket at the first write
    "failed to send message node: frame socket is closed",
    "failed to send message node: frame too large",
    "the store doesn't contain a device jid",  # ErrNotLoggedIn
    "can't send message to unknown server",  # ErrUnknownServer
    "message recipient must be a user jid",  # ErrRecipientADJID
    "sending to non-status broadcast lists",  # ErrBroadcastListUnsupported
    "invalid inline bot id",  # ErrInvalidInlineBotID
    "only one extra parameter",
    "failed to get lid for pn",  # the LID store lookup of a phone-number recipient
    "failed to get user info for",  # the usync query that fills the LID cache
    "no lid found for",  # WhatsApp knows no LID for the number: it is not on WhatsApp
    "failed to get group members",
    "failed to get broadcast list members",
    "failed to get device list",  # the usync device query
    "failed to fetch lid mappings",
    "failed to prefetch sessions",
    "failed to save cached sessions",
    "failed to clear untrusted identity",
    "failed to process prekey bundle",
    "no signal session established",  # ErrNoSession
    "cipher encryption failed",
    "failed to encrypt",  # group / peer message encryption
    "failed to create sender key distribution message",
    "failed to marshal",  # message, node or sender key message
    "proto:",  # goneonize could not read the JID or message buffer
)

_DIGIT_RUN = re.compile(r"\d{5,}")


def _mask_digits(digits: str) -> str:
    if len(digits) < 6:
        return "****"
    return f"{digits[:3]}****{digits[-2:]}"


def mask_phone(phone: str) -> str:
    """``"+40712345678"`` -> ``"+407****78"``: safe to log."""
    digits = "".join(c for c in phone if c.isdigit())
    return ("+" if phone.startswith("+") else "") + _mask_digits(digits)


def mask_text(text: str) -> str:
    """Mask every run of 5+ digits (phone numbers, JID users) in free text."""
    return _DIGIT_RUN.sub(lambda m: _mask_digits(m.group()), text)


def phone_digits(phone: str) -> str:
    """E.164 without the '+': what whatsmeow wants for pairing codes and JIDs."""
    return "".join(c for c in phone if c.isdigit())


def jid_to_str(jid: Any) -> str:
    """A neonize ``JID`` as ``user@server``, without device/agent parts ("" if empty)."""
    user = str(jid.User or "")
    if not user:
        return ""
    return f"{user}@{jid.Server or USER_SERVER}"


def parse_jid(value: str) -> tuple[str, str]:
    """``"407..@s.whatsapp.net"``, ``"+407.."`` or ``"407.."`` -> (user, server)."""
    if "@" in value:
        user, server = value.rsplit("@", 1)
        user = user.split(":", 1)[0].split(".", 1)[0]
    else:
        user, server = phone_digits(value), USER_SERVER
    if not user or not server:
        raise ValueError("not a JID")
    return user, server


def _prefer_phone(primary: Any, alt: Any) -> str:
    """Prefer the phone-number JID when WhatsApp addresses the peer by LID."""
    if primary.Server == LID_SERVER and alt is not None and alt.Server == USER_SERVER:
        alt_str = jid_to_str(alt)
        if alt_str:
            return alt_str
    return jid_to_str(primary)


def proto_timestamp(value: int) -> datetime:
    """neonize message timestamps are Unix milliseconds; accept seconds too."""
    if value <= 0:
        return datetime.now(UTC)
    seconds = value / 1000 if value > 100_000_000_000 else float(value)
    return datetime.fromtimestamp(seconds, UTC)


def enum_name(msg: Any, field: str) -> str:
    """Name of an enum field's value, or "" when unset/unknown."""
    if not msg.HasField(field):
        return ""
    value = msg.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(getattr(msg, field))
    return str(value.name) if value is not None else ""


def extract_text(message: Any) -> str:
    """Plain text of a WhatsApp message: ``conversation`` or ``extendedTextMessage``."""
    if message.HasField("extendedTextMessage") and message.extendedTextMessage.text:
        return str(message.extendedTextMessage.text)
    return str(message.conversation or "")


def map_message(msg: Any) -> InboundMessage | None:
    """A neonize ``Message`` event -> InboundMessage, or None if it is not inbound text."""
    info = msg.Info
    src = info.MessageSource
    if src.IsFromMe or not info.ID or src.Chat.Server in _SKIPPED_SERVERS:
        return None
    text = extract_text(msg.Message)
    if not text:
        return None
    sender = _prefer_phone(src.Sender, src.SenderAlt if src.HasField("SenderAlt") else None)
    chat = jid_to_str(src.Chat) if src.IsGroup else ""
    if not chat:
        chat = _prefer_phone(src.Chat, src.SenderAlt if src.HasField("SenderAlt") else None)
    return InboundMessage(
        wa_id=str(info.ID),
        chat_jid=chat,
        sender_jid=sender or chat,
        text=text,
        timestamp=proto_timestamp(int(info.Timestamp)),
    )


def _connect_failure(reason: str) -> TransportEvent:
    code = CONNECT_FAILURE_CODES.get(reason)
    if reason in LOGOUT_REASONS:
        return LoggedOut(reason=reason.lower(), code=code)
    if reason == "CLIENT_OUTDATED":
        return ClientOutdated()
    return Disconnected(reason=f"connect_failure: {reason.lower()}", code=code)


def map_event(msg: Any, own_jid: str) -> list[TransportEvent]:
    """Map one neonize event message to zero or more transport events."""
    name = msg.DESCRIPTOR.name
    if name == "Connected":
        return [Connected(jid=own_jid)]
    if name == "PairStatus":
        if enum_name(msg, "Status") == "SUCCESS":
            return [Paired(jid=jid_to_str(msg.ID) or own_jid)]
        return [Disconnected(reason=f"pair_failed: {mask_text(str(msg.Error))}")]
    if name == "LoggedOut":
        reason = enum_name(msg, "Reason") or "LOGGED_OUT"
        return [LoggedOut(reason=reason.lower(), code=CONNECT_FAILURE_CODES.get(reason))]
    if name == "TemporaryBan":
        reason = enum_name(msg, "Code") or "temporary_ban"
        return [TemporaryBan(reason=reason.lower(), retry_after=float(max(int(msg.Expire), 0)))]
    if name == "StreamReplaced":
        return [StreamReplaced()]
    if name == "Disconnected":
        return [Disconnected(reason="connection_lost")]
    if name == "ClientOutdated":
        return [ClientOutdated()]
    if name == "KeepAliveTimeout":
        return [KeepAliveTimeout(error_count=max(int(msg.ErrorCount), 1))]
    if name == "KeepAliveRestored":
        return [KeepAliveRestored()]
    if name == "ConnectFailure":
        return [_connect_failure(enum_name(msg, "Reason") or "GENERIC")]
    if name == "Message":
        inbound = map_message(msg)
        return [inbound] if inbound is not None else []
    if name == "Receipt":
        status = RECEIPT_STATUS.get(enum_name(msg, "Type"))
        if status is None:
            return []
        return [Receipt(wa_id=str(i), status=status) for i in msg.MessageIDs if i]
    return []


def send_error_reached(error: str) -> bool:
    """Whether WhatsApp may have received a message whose send failed with ``error``.

    Only errors whatsmeow raises before writing the message node to the socket count
    as "not reached" (``_SEND_NOT_REACHED``); anything else (the 75 s wait for the
    server's ack, "server returned error", write errors, a disconnect while waiting,
    unknown text) is treated as ambiguous, so that the outbox never silently re-sends.
    """
    lowered = error.lower()
    return not any(marker in lowered for marker in _SEND_NOT_REACHED)


# ---- passkeys in whatsmeow's log lines -------------------------------------------------
# neonize 0.5.2 passes no passkey event on outside the QR channel (its event handler has no
# case for PairPasskeyRequest), so in the pairing-code flow only whatsmeow's log lines may
# say that the phone asked for one. Lines come from goneonize's logger as (module, text):
# - pair-code.go:145-176 (+ errors.go:246-248), Error, "Client": the phone's code-pair
#   notification lacks the key a code pairing needs (tulir/whatsmeow#1188, #1233);
# - client.go:853 (+ binary/xml.go), Debug, "Client/Recv": the received passkey
#   notification itself (notification.go:507-508), only at whatsmeow's DEBUG level;
# - pair-passkey.go:54-65, Warn, "Client": whatsmeow could neither parse the passkey
#   notification nor fetch its options; it then puts an "error" in the QR channel instead
#   of "passkey-request" (an "error" alone says nothing of a passkey). The Warn is logged
#   on the goroutine that dispatches the error, before it: it reaches the session first.
# Heuristics on log texts: the stable parts are the node and element names.
PASSKEY_LOG_MARKS = (b"link_code_pairing_wrapped_primary_ephemeral_pub", b"passkey")
"""Bytes at least one of which is in every line ``passkey_log_signal`` knows: a cheap
test on the raw log entry before anything is parsed."""

_CODE_PAIR_WITHOUT_KEY = (
    "Failed to handle code pair notification: missing "
    "<link_code_pairing_wrapped_primary_ephemeral_pub> element"
)
_PASSKEY_NOTIFICATION = 'type="passkey_prologue_request"'
_PASSKEY_UNREADABLE = "Failed to fetch passkey options"


def passkey_log_signal(name: str, message: str) -> str | None:
    """What a whatsmeow log line says of a passkey request (a reason), or None."""
    if message.startswith(_CODE_PAIR_WITHOUT_KEY):
        return "code pair notification without its key"
    if name.endswith("/Recv") and message.startswith("<notification"):
        head = message.split(">", 1)[0]  # the node's own attributes, not its content
        if _PASSKEY_NOTIFICATION in head:
            return "passkey_prologue_request notification"
    if message.startswith(_PASSKEY_UNREADABLE):
        return "passkey request unreadable"
    return None
