"""The account phase model, written once: phases, allowed transitions, legacy names."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    PENDING = "Pending"  # declared, not yet running (or not yet on a shard)
    CONNECTING = "Connecting"  # session starting, stream being opened
    QR_READY = "QRReady"  # waiting for a QR scan
    PAIRING_CODE_READY = "PairingCodeReady"  # waiting for the code to be typed on the phone
    CONNECTED = "Connected"
    RECONNECTING = "Reconnecting"  # stream lost, waiting out a backoff before the next try
    LOGGED_OUT = "LoggedOut"  # device unlinked; a new link is needed (regenerate-qr)
    QR_TIMEOUT = "QRTimeout"  # QR-loop guard: nobody scanned, waiting for regenerate-qr
    # The phone asked for a passkey to link the device, which wafleet cannot answer yet:
    # waiting for a command (regenerate-qr once the phone asks none, or after a migration).
    PASSKEY_REQUIRED = "PasskeyRequired"
    SUSPENDED = "Suspended"  # stopped on request, session kept
    REPLACED = "Replaced"  # another client took the session; waiting for a command
    # Moving to another shard: the source lets the session go, the target takes it (written
    # by the operator and the source, never by a runner; the target's runner starts Pending).
    MOVING = "Moving"
    FAILED = "Failed"  # cannot run (e.g. unreadable session store); see the reason


_LINKING = {Phase.QR_READY, Phase.PAIRING_CODE_READY}
# What a phase that waits for a person's command may become: regenerate-qr (Connecting),
# suspend, or Pending (a restart, a move to another shard).
_WAITING = frozenset({Phase.CONNECTING, Phase.SUSPENDED, Phase.PENDING})

ALLOWED: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.CONNECTING, Phase.SUSPENDED}),
    Phase.CONNECTING: frozenset(
        {*_LINKING, Phase.CONNECTED, Phase.RECONNECTING, Phase.LOGGED_OUT, Phase.SUSPENDED}
        | {Phase.QR_TIMEOUT, Phase.PENDING, Phase.REPLACED, Phase.PASSKEY_REQUIRED}
    ),
    Phase.QR_READY: frozenset(
        {Phase.QR_READY, Phase.CONNECTING, Phase.CONNECTED, Phase.RECONNECTING}
        | {Phase.QR_TIMEOUT, Phase.LOGGED_OUT, Phase.SUSPENDED, Phase.PENDING}
        | {Phase.PASSKEY_REQUIRED}
    ),
    Phase.PAIRING_CODE_READY: frozenset(
        {Phase.PAIRING_CODE_READY, Phase.CONNECTING, Phase.CONNECTED, Phase.RECONNECTING}
        | {Phase.QR_TIMEOUT, Phase.LOGGED_OUT, Phase.SUSPENDED, Phase.PENDING}
        | {Phase.PASSKEY_REQUIRED}
    ),
    Phase.CONNECTED: frozenset(
        {Phase.CONNECTING, Phase.RECONNECTING, Phase.LOGGED_OUT, Phase.SUSPENDED, Phase.PENDING}
        | {Phase.REPLACED}
    ),
    # Reconnecting -> Connected: a keepalive timeout that whatsmeow recovered by itself.
    Phase.RECONNECTING: frozenset(
        {Phase.CONNECTING, Phase.CONNECTED, Phase.LOGGED_OUT, Phase.SUSPENDED, Phase.PENDING}
        | {Phase.REPLACED}
    ),
    Phase.LOGGED_OUT: _WAITING,
    Phase.QR_TIMEOUT: _WAITING,
    Phase.PASSKEY_REQUIRED: _WAITING,
    Phase.SUSPENDED: frozenset({Phase.CONNECTING, Phase.PENDING}),
    Phase.REPLACED: frozenset({Phase.CONNECTING, Phase.SUSPENDED, Phase.PENDING}),
    Phase.FAILED: frozenset({Phase.CONNECTING, Phase.SUSPENDED, Phase.PENDING}),
    Phase.MOVING: frozenset({Phase.PENDING, Phase.CONNECTING, Phase.SUSPENDED}),
}


# Any phase may end in Failed: a runner that crashes says so instead of keeping a stale phase.
# Any phase may be Moving: a move to another shard is asked for whatever the account does.
ALLOWED = {phase: targets | {Phase.FAILED, Phase.MOVING} for phase, targets in ALLOWED.items()}


class IllegalTransition(RuntimeError):
    pass


def can_transition(current: Phase, new: Phase) -> bool:
    return new in ALLOWED[current]


def check_transition(current: Phase, new: Phase) -> Phase:
    """Return ``new`` if the move is allowed, else raise IllegalTransition."""
    if not can_transition(current, new):
        raise IllegalTransition(f"an account cannot go from {current} to {new}")
    return new


# The legacy server's status strings, which its clients (the Flutter app) read.
LEGACY_STATUS: dict[Phase, str] = {
    Phase.PENDING: "connecting",
    Phase.CONNECTING: "connecting",
    Phase.QR_READY: "qr_ready",
    Phase.PAIRING_CODE_READY: "qr_ready",
    Phase.CONNECTED: "connected",
    Phase.RECONNECTING: "reconnecting",
    Phase.LOGGED_OUT: "logged_out",
    Phase.QR_TIMEOUT: "needs_qr",
    Phase.PASSKEY_REQUIRED: "needs_qr",  # the legacy clients know no passkey: "link it again"
    Phase.SUSPENDED: "disconnected",
    Phase.REPLACED: "disconnected",
    Phase.FAILED: "disconnected",
    Phase.MOVING: "reconnecting",  # offline for seconds, back without a scan
}

# Which dashboard summary bucket each phase counts in.
SUMMARY_BUCKET: dict[Phase, str] = {
    Phase.PENDING: "connecting",
    Phase.CONNECTING: "connecting",
    Phase.QR_READY: "needs_qr",
    Phase.PAIRING_CODE_READY: "needs_qr",
    Phase.CONNECTED: "connected",
    Phase.RECONNECTING: "connecting",
    Phase.LOGGED_OUT: "needs_qr",
    Phase.QR_TIMEOUT: "needs_qr",
    Phase.PASSKEY_REQUIRED: "needs_qr",
    Phase.SUSPENDED: "disconnected",
    Phase.REPLACED: "disconnected",
    Phase.FAILED: "disconnected",
    Phase.MOVING: "connecting",
}

# The phases in which a person has to link the device (scan, type a code, or act first and
# then call regenerate-qr): the dashboard's needsQR, the QR page's list. PasskeyRequired is
# one: nothing links it until a person acts (migrates the session, or links from a phone
# that asks no passkey), and the QR page shows its reason, which says what to do.
NEEDS_QR = frozenset(
    {Phase.QR_READY, Phase.PAIRING_CODE_READY, Phase.LOGGED_OUT, Phase.QR_TIMEOUT}
    | {Phase.PASSKEY_REQUIRED}
)
