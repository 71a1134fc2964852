"""An account runner's state: what it holds, how it reports, how it stops a session."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from wafleet.core.models import AccountSpec, AccountStatus
from wafleet.core.phases import Phase, can_transition
from wafleet_connector.runner.context import Command, RunnerContext, now
from wafleet_connector.transport import (
    Session,
    TransportEvent,
)

logger = logging.getLogger(__name__)


class RunnerState:
    """An account runner's state and the status it reports; the parts build on it."""

    def __init__(self, spec: AccountSpec, status: AccountStatus, ctx: RunnerContext) -> None:
        self.spec = spec
        self.status = status
        self.ctx = ctx
        self._queue: asyncio.Queue[tuple[int, TransportEvent] | Command] = asyncio.Queue()
        self._generation = 0
        self._session: Session | None = None
        self._attempt = 0
        self._qr_cycles = 0
        self._delay = 0.0
        self._fresh_link = False  # skip the restore: a person chose to link a new device
        self._pairing_codes = 0  # pairing codes shown since the last regenerate/connect
        self._replaced_retried = False  # the one retry after a stream replaced is spent
        self._connected_since: float | None = None  # monotonic, while connected
        self._unlink_attempt = 0
        self.deleted = False  # the device was unlinked and the session wiped: it is gone
        self.task: asyncio.Task[None] | None = None

    @property
    def session_path(self) -> Path:
        return self.ctx.sessions_dir / f"{self.spec.id}.db"

    # ----- status ----------------------------------------------------------------------
    def _set(self, phase: Phase, **changes: Any) -> None:
        if phase != self.status.phase and not can_transition(self.status.phase, phase):
            logger.error(
                "unexpected phase change",
                extra={"account": self.spec.id, "from": self.status.phase, "to": phase},
            )
        stamp = now()
        self.status = replace(
            self.status, phase=phase, last_event_at=stamp, updated_at=stamp, **changes
        )
        self.ctx.report(self.spec.id, self.status)

    def touch_message(self, at: datetime) -> None:
        self.status = replace(self.status, last_message_at=at, last_event_at=now())
        self.ctx.report(self.spec.id, self.status)

    # ----- stopping a session ------------------------------------------------------------
    async def _stop_session(self) -> None:
        session, self._session = self._session, None
        self._connected_since = None
        if session is not None:
            await self._stop(session)

    async def _stop(self, session: Session) -> None:
        try:
            await asyncio.wait_for(session.stop(), self.ctx.stop_timeout)
        except (TimeoutError, Exception):
            logger.warning("session did not stop cleanly", extra={"account": self.spec.id})
