"""neonize events -> transport events, and which send errors reached WhatsApp."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

if importlib.util.find_spec("neonize") is None:
    pytest.skip("neonize is not installed", allow_module_level=True)

from wafleet_connector.engine.ffi import load_modules
from wafleet_connector.engine.mapping import (
    PASSKEY_LOG_MARKS,
    map_event,
    passkey_log_signal,
    send_error_reached,
)
from wafleet_connector.transport import (
    ClientOutdated,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    Receipt,
    StreamReplaced,
)

pytestmark = pytest.mark.neonize

pb: Any = load_modules().pb
e2e: Any = load_modules().e2e
OWN = "40711111111@s.whatsapp.net"


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0) -> Any:
    return pb.JID(
        User=user, Server=server, RawAgent=0, Device=device, Integrator=0, IsEmpty=not user
    )


def test_empty_and_keepalive_events_map_to_their_transport_events() -> None:
    # These arrive with a NULL payload: decoded from b"" they are the empty message.
    assert map_event(pb.StreamReplaced.FromString(b""), OWN) == [StreamReplaced()]
    assert map_event(pb.ClientOutdated.FromString(b""), OWN) == [ClientOutdated()]
    assert map_event(pb.KeepAliveRestored.FromString(b""), OWN) == [KeepAliveRestored()]
    timeout = pb.KeepAliveTimeout(ErrorCount=3, LastSuccess=1_700_000_000)
    assert map_event(timeout, OWN) == [KeepAliveTimeout(error_count=3)]


def test_connect_failures_map_by_reason() -> None:
    outdated = pb.ConnectFailure(Reason=pb.CLIENT_OUTDATED, Message="")
    assert map_event(outdated, OWN) == [ClientOutdated()]
    gone = pb.ConnectFailure(Reason=pb.UNKNOWN_LOGOUT, Message="")
    assert map_event(gone, OWN) == [LoggedOut(reason="unknown_logout", code=406)]
    generic = map_event(pb.ConnectFailure(Reason=pb.GENERIC, Message=""), OWN)
    assert generic == [Disconnected(reason="connect_failure: generic", code=400)]


def test_lid_sender_without_a_phone_alt_keeps_the_lid() -> None:
    src = pb.MessageSource(
        Chat=jid("123456789", "lid"),
        Sender=jid("123456789", "lid"),
        IsFromMe=False,
        IsGroup=False,
        SenderAlt=jid(""),  # goneonize always encodes SenderAlt: empty when unknown
        RecipientAlt=jid(""),
        BroadcastListOwner=jid(""),
    )
    msg = pb.Message(
        Info=pb.MessageInfo(MessageSource=src, ID="3EB0L", Timestamp=1_741_000_000_000),
        Message=e2e.Message(conversation="hello"),
    )
    [event] = map_event(msg, OWN)
    assert isinstance(event, InboundMessage)
    assert event.chat_jid == event.sender_jid == "123456789@lid"


def test_receipts_map_delivered_read_played_and_skip_the_rest() -> None:
    src = pb.MessageSource(Chat=jid("40722222222"), Sender=jid("40722222222"), IsFromMe=True)
    for kind, status in ((pb.Receipt.DELIVERED, "delivered"), (pb.Receipt.READ, "read"),
                         (pb.Receipt.PLAYED, "played")):  # fmt: skip
        receipt = pb.Receipt(MessageSource=src, MessageIDs=["A"], Type=kind, Timestamp=1)
        assert map_event(receipt, OWN) == [Receipt("A", status)]
    for kind in (pb.Receipt.READ_SELF, pb.Receipt.RETRY, pb.Receipt.SERVER_ERROR):
        receipt = pb.Receipt(MessageSource=src, MessageIDs=["A"], Type=kind, Timestamp=1)
        assert map_event(receipt, OWN) == []


# whatsmeow's own texts (send.go, client.go, errors.go) for failures before the message
# node was written to the socket, as SendMessage returns them through goneonize.
NOT_REACHED = [
    "client is nil",
    "the store doesn't contain a device JID",
    "message recipient must be a user JID with no device part",
    "can't send message to unknown server example.org",
    "sending to non-status broadcast lists is not yet supported",
    "failed to get LID for PN 40722222222@s.whatsapp.net: sql: database is closed",
    "failed to get user info for 40722222222@s.whatsapp.net to fill LID cache: "
    "info query timed out",
    "no LID found for 40722222222@s.whatsapp.net from server",  # not on WhatsApp
    "failed to get group members: info query timed out",
    "failed to get device list: websocket not connected",
    "failed to fetch LID mappings: context canceled",
    "failed to prefetch sessions: sql: database is locked",
    "can't encrypt message for device: no signal session established with 1234.0:3",
    "cipher encryption failed: invalid key",
    "failed to encrypt group message to send 3EB0 to 1203@g.us: no sender key",
    "failed to marshal message: proto: invalid UTF-8",
    "failed to send message node: websocket not connected",
    "failed to send message node: frame socket is closed",
    "proto: cannot parse invalid wire-format data",
]

# Failures after (or maybe after) the write: the message may have reached WhatsApp.
MAYBE_REACHED = [
    "timed out waiting for message send response",  # no server ack within 75 s
    "server returned error 479",
    "websocket disconnected before message send returned response",
    "websocket not connected",  # retryFrame: reconnect to resend failed after the write
    "frame socket is closed",  # retryFrame's resend
    "failed to send message node: failed to write frame: broken pipe",
    "something whatsmeow may say one day",
]


@pytest.mark.parametrize("error", NOT_REACHED)
def test_send_errors_before_the_socket_write_are_not_reached(error: str) -> None:
    assert send_error_reached(error) is False


@pytest.mark.parametrize("error", MAYBE_REACHED)
def test_send_errors_after_the_write_count_as_reached(error: str) -> None:
    assert send_error_reached(error) is True


# whatsmeow's own log lines (pair-code.go:145-176 with errors.go:246-248, client.go:853 with
# binary/xml.go, pair-passkey.go:49-66), as goneonize's logger passes them (module, text).
PASSKEY_LINES = [
    (
        "Client",
        "Failed to handle code pair notification: missing "
        "<link_code_pairing_wrapped_primary_ephemeral_pub> element in notification",
        "code pair notification without its key",
    ),
    (
        "Client/Recv",
        '<notification from="s.whatsapp.net" id="123" t="1760000000" '
        'type="passkey_prologue_request"><passkey_request_options>{}</passkey_request_options>'
        "</notification>",
        "passkey_prologue_request notification",
    ),
    (
        "Client",
        "Failed to fetch passkey options: info query timed out",
        "passkey request unreadable",
    ),
]
NOT_PASSKEY_LINES = [
    (
        "Client",
        "Failed to handle code pair notification: pairing ref mismatch in code pair notification",
    ),
    ("Client", "Sending automatic passkey confirmation"),
    (
        "Client/Send",
        '<iq id="1" to="s.whatsapp.net" type="set" xmlns="md"><passkey_prologue>'
        "</passkey_prologue></iq>",
    ),
    (
        "Client/Recv",
        '<iq from="s.whatsapp.net" id="1" type="result">passkey_prologue_request</iq>',
    ),
    ("Client", "Failed to parse passkey notification: missing <passkey_request_options>"),
    ("Database", "unexpected length of link_code_pairing_wrapped_primary_ephemeral_pub: 12"),
]


@pytest.mark.parametrize(("name", "message", "reason"), PASSKEY_LINES)
def test_whatsmeow_log_lines_that_mean_a_passkey_was_asked(
    name: str, message: str, reason: str
) -> None:
    assert passkey_log_signal(name, message) == reason
    assert any(mark in message.encode() for mark in PASSKEY_LOG_MARKS)  # the cheap filter


@pytest.mark.parametrize(("name", "message"), NOT_PASSKEY_LINES)
def test_other_log_lines_mention_passkeys_without_asking_for_one(name: str, message: str) -> None:
    assert passkey_log_signal(name, message) is None
