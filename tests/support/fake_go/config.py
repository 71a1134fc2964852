"""The fake's settings and the fixed values it shares with the real library.

The environment names ``load_from_env`` reads, the version ``GetVersion`` claims, the size
of goneonize's event channel, the error texts the shipped library gives for a missing
client or device, ``FakeGoTiming`` (how long things take: whatsmeow's defaults where it
has them) and ``ClientStats`` (what one client did with inbound messages, for tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIM_URL_ENV = "WAFLEET_FAKE_GO_SIM_URL"
FATAL_TEXT_ENV = "WAFLEET_FAKE_GO_FATAL_TEXT"
GO_VERSION = b"0.5.2"
CHANNEL_SLOTS = 100  # goneonize: make(chan *MessageEvent, 100)
PAIR_NIL = (
    "client is nil: ensure client is connected before calling PairPhone, "
    "or pass pairphone to connect()"
)
NOT_LOGGED_IN = "the store doesn't contain a device JID"


@dataclass(frozen=True)
class FakeGoTiming:
    """How long things take in the fake; defaults as in whatsmeow where it has them."""

    read_hold: float = 0.002  # a Go map read
    neonize_write_hold: float = 0.02  # Neonize's map writes + opening the store
    stop_write_hold: float = 0.002  # Stop's map deletes
    dial_timeout: float = 10.0
    iq_timeout: float = 75.0  # whatsmeow's default request timeout (logout, pairing code)
    send_timeout: float = 75.0  # whatsmeow waits this long for the server's send ack
    qr_codes: int = 6  # whatsmeow gets 6 codes per QR session, then times out
    pairing_ttl: float = 160.0  # a pairing code session ends like the QR codes would
    keepalive_max_fail: float = 180.0  # whatsmeow's KeepAliveMaxFailTime
    reconnect_step: float = 2.0  # whatsmeow's auto-reconnect delay: errors x 2 s


@dataclass
class ClientStats:
    """What one fake client did with inbound messages (ids)."""

    acked: list[str] = field(default_factory=list)  # receipts sent to the sim
    seen: list[str] = field(default_factory=list)  # handed to the Python callback
    lost: list[str] = field(default_factory=list)  # still queued when Stop came
