"""What a runner shares with the rest of the connector, and its commands."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Literal

from wafleet.core.models import AccountStatus, Incident
from wafleet.core.phases import Phase
from wafleet_connector.pacing import Backoff, TokenBucket
from wafleet_connector.transport import (
    InboundMessage,
    Receipt,
    Session,
    Transport,
)
from wafleet_connector.vault import SessionVault

logger = logging.getLogger(__name__)

CommandKind = Literal["regenerate", "suspend", "resume", "delete", "shutdown"]


class CommandRefused(Exception):
    """A command that does not apply to the account's current state."""


class UnlinkPending(Exception):
    """A delete whose device could not be unlinked yet: the session is kept, the runner
    retries with backoff, and the delete completes only once WhatsApp confirmed it."""


@dataclass
class Command:
    kind: CommandKind
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def finish(self, error: Exception | None = None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)


@dataclass(frozen=True)
class RunnerContext:
    """What a runner shares with the rest of the connector."""

    transport: Transport
    starts: TokenBucket
    backoff: Backoff
    sessions_dir: Path
    qr_max_cycles: int
    stop_timeout: float
    inbound: Callable[[str, InboundMessage], Awaitable[None]]
    report: Callable[[str, AccountStatus], None]
    incident: Callable[[Incident], Awaitable[None]]
    on_connected: Callable[[str, Session], None]
    on_disconnected: Callable[[str], None]
    vault: SessionVault = field(default_factory=lambda: SessionVault(None))
    receipt: Callable[[str, Receipt], None] = lambda _account, _receipt: None
    pairing_timeout: float = 180.0
    pairing_max_codes: int = 3  # each code notifies the phone: then wait for regenerate-qr
    replaced_retry: float = 30.0  # after a stream replaced, one retry after this long
    replaced_stable: float = 300.0  # connected this long: a later replacement is news
    logout_timeout: float = 25.0  # a logout waits this long for WhatsApp's confirmation
    # A start that reaches nothing (no QR code, no pairing code, not connected) this long is
    # ended and retried with backoff, as the legacy WHATSAPP_CONNECT_TIMEOUT_MS did.
    connect_timeout: float = 60.0


class Next(Enum):
    RETRY = "retry"  # wait out a delay, then start again
    WAIT = "wait"  # wait for a command (logged out, QR-loop guard)
    AGAIN = "again"  # start again now
    UNLINK = "unlink"  # deleting: retry the unlink after a delay
    EXIT = "exit"


def now() -> datetime:
    return datetime.now(UTC)


WAITING_PHASES = (
    Phase.LOGGED_OUT,
    Phase.QR_TIMEOUT,
    Phase.PASSKEY_REQUIRED,
    Phase.SUSPENDED,
    Phase.REPLACED,
)
