"""The worker's frames and the connector's reading of them agree, event by event."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wafleet_connector.engine.frames import BadHello, frame_of, spec_of_hello
from wafleet_connector.frame_client import _simple, inbound_of
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
    StreamReplaced,
    TemporaryBan,
    TransportEvent,
)

pytestmark = pytest.mark.neonize

AT = datetime(2026, 12, 1, 9, 30, 15, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    "event",
    [
        QRCode(code="2@abc,def", expires_at=AT),
        PairingCode(code="ABCD-EFGH"),
        Receipt(wa_id="3EB0X", status="read"),
        LoggedOut(reason="logged_out", code=401),
        LoggedOut(reason="main_device_gone", code=None),
        TemporaryBan(reason="temp_ban", retry_after=3600.0),
        StreamReplaced(),
        ClientOutdated(),
        KeepAliveTimeout(error_count=3),
        KeepAliveRestored(),
        Disconnected(reason="connect_failed: no route", code=None),
        Disconnected(reason="qr_timeout", code=None),
        PasskeyRequired(reason="passkey-request"),
        PasskeyRequired(reason="code pair notification without its key"),
    ],
)
def test_status_events_survive_the_trip(event: TransportEvent) -> None:
    assert _simple(frame_of(event)) == event


def test_an_inbound_message_survives_the_trip() -> None:
    event = InboundMessage(
        wa_id="3EB0ABC",
        chat_jid="120363@g.us",
        sender_jid="40744444444@s.whatsapp.net",
        text="yo",
        timestamp=AT,
    )
    assert inbound_of(frame_of(event)) == event


def test_paired_and_connected_carry_the_jid() -> None:
    assert frame_of(Paired(jid="40711111111@s.whatsapp.net")) == {
        "type": "paired",
        "jid": "40711111111@s.whatsapp.net",
    }
    assert frame_of(Connected(jid="40711111111@s.whatsapp.net"))["type"] == "connected"


def test_the_sims_passkey_request_reads_as_the_engines() -> None:
    assert _simple({"type": "passkey_request"}) == PasskeyRequired()
    assert frame_of(PasskeyRequired())["type"] == "passkey_request"


def hello(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "hello",
        "account": "wa-one",
        "phone": "+40711111111",
        "login": "qr",
        "session": str(tmp_path / "sessions" / "wa-one.db"),
    }
    frame.update(changes)
    return frame


def test_a_good_hello_is_a_spec(tmp_path: Path) -> None:
    spec = spec_of_hello(hello(tmp_path, login="pairingCode"), tmp_path / "sessions")
    assert (spec.account_id, spec.phone, spec.login) == ("wa-one", "+40711111111", "pairingCode")
    assert spec.session_path == tmp_path / "sessions" / "wa-one.db"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"type": "ack"}, "the first frame must be a hello"),
        ({"account": ""}, "hello needs 'account'"),
        ({"phone": "0711111111"}, "hello needs 'phone' in E.164"),
        ({"login": "sms"}, "hello 'login' must be one of qr, pairingCode"),
        ({"session": None}, "hello needs 'session'"),
        ({"session": "/etc/passwd"}, "outside the sessions directory"),
        ({"session": "SESSIONS/../../other.db"}, "outside the sessions directory"),
    ],
)
def test_a_bad_hello_says_what_is_wrong(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    if changes.get("session") == "SESSIONS/../../other.db":
        changes = {"session": str(tmp_path / "sessions" / ".." / ".." / "other.db")}
    with pytest.raises(BadHello, match=message):
        spec_of_hello(hello(tmp_path, **changes), tmp_path / "sessions")


def test_no_hello_at_all(tmp_path: Path) -> None:
    with pytest.raises(BadHello, match="must be a hello"):
        spec_of_hello(None, tmp_path)
