"""One account's life: start, link, stay connected, reconnect, stop. One task per account.

Transport events and commands (regenerate, suspend, resume, delete, shutdown)
arrive in one queue, so an account's state changes one at a time, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from wafleet.core.models import AccountSpec, AccountStatus, Disconnect, Incident
from wafleet.core.phases import Phase, can_transition
from wafleet.core.phones import mask_phone
from wafleet_connector.pacing import Backoff, TokenBucket
from wafleet_connector.sessionfiles import has_session
from wafleet_connector.transport import (
    Connected,
    Disconnected,
    InboundMessage,
    LoggedOut,
    Paired,
    PairingCode,
    QRCode,
    Session,
    SessionSpec,
    TemporaryBan,
    Transport,
    TransportEvent,
)
from wafleet_connector.vault import RestoreRefused, SessionVault

logger = logging.getLogger(__name__)

CommandKind = Literal["regenerate", "suspend", "resume", "delete", "shutdown"]


class CommandRefused(Exception):
    """A command that does not apply to the account's current state."""


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
    pairing_timeout: float = 180.0


class _Next(Enum):
    RETRY = "retry"  # wait out a delay, then start again
    WAIT = "wait"  # wait for a command (logged out, QR-loop guard)
    AGAIN = "again"  # start again now
    EXIT = "exit"


def now() -> datetime:
    return datetime.now(UTC)


class AccountRunner:
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
        self.task: asyncio.Task[None] | None = None

    @property
    def session_path(self) -> Path:
        return self.ctx.sessions_dir / f"{self.spec.id}.db"

    # ----- outside interface -----------------------------------------------------------
    def start(self) -> None:
        if self.status.phase not in (Phase.LOGGED_OUT, Phase.QR_TIMEOUT, Phase.SUSPENDED):
            # What was stored describes the last run, not this one: nothing runs yet.
            self._set(Phase.PENDING, reason="waiting for its turn to start", qr=None)
        self.task = asyncio.create_task(self._main(), name=f"account-{self.spec.id}")

    def submit(self, kind: CommandKind) -> asyncio.Future[None]:
        command = Command(kind)
        self._queue.put_nowait(command)
        return command.done

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

    # ----- the loop --------------------------------------------------------------------
    async def _main(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            await self._stop_session()
            raise
        except Exception:
            logger.exception("account runner crashed", extra={"account": self.spec.id})
            await self._stop_session()
            self._set(Phase.FAILED, reason="internal error; see the connector log")

    async def _loop(self) -> None:
        step = _Next.AGAIN
        if self.status.phase in (Phase.LOGGED_OUT, Phase.QR_TIMEOUT):
            step = _Next.WAIT
        while True:
            if self.spec.suspended:
                if self.status.phase != Phase.SUSPENDED:
                    self._set(Phase.SUSPENDED, reason="suspended on request", qr=None)
                step = _Next.WAIT
            if step is _Next.WAIT:
                step = await self._on_command(await self._next_command(), step)
            elif step is _Next.RETRY:
                item = await self._next_item(self._delay)
                step = _Next.AGAIN if item is None else await self._on_command(item, step)
            elif step is _Next.AGAIN:
                step = await self._cycle()
            if step is _Next.EXIT:
                return

    async def _next_item(self, within: float | None) -> Command | None:
        """The next command within ``within`` seconds; events of old sessions are dropped."""
        deadline = None if within is None else time.monotonic() + within
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = await asyncio.wait_for(self._queue.get(), left)
            except TimeoutError:
                return None
            if isinstance(item, Command):
                return item

    async def _next_command(self) -> Command:
        item = await self._next_item(None)
        assert item is not None
        return item

    async def _cycle(self) -> _Next:
        """Run one session from start until it ends or a command ends it."""
        waiter = asyncio.create_task(self.ctx.starts.acquire())
        getter = asyncio.create_task(self._next_item(None))
        done, _ = await asyncio.wait({waiter, getter}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            waiter.cancel()
            command = getter.result()
            assert command is not None
            return await self._on_command(command, _Next.AGAIN)
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        self._set(Phase.CONNECTING, reason=None)
        restore = await self._restore()
        if restore is not None:
            return restore
        self._generation += 1
        generation = self._generation
        spec = SessionSpec(self.spec.id, self.spec.phone, self.spec.login, self.session_path)
        self._session = await self.ctx.transport.open(spec, self._sink(generation))
        pairing_deadline: float | None = None
        while True:
            timeout = None if pairing_deadline is None else pairing_deadline - time.monotonic()
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                return await self._qr_guard("nobody entered the pairing code in time")
            if isinstance(item, Command):
                try:
                    step = await self._apply(item)
                except CommandRefused as exc:
                    item.finish(exc)
                    continue
                item.finish()
                return step
            item_generation, event = item
            if item_generation != generation:
                continue
            if isinstance(event, PairingCode):
                pairing_deadline = time.monotonic() + self.ctx.pairing_timeout
            outcome = await self._on_event(event)
            if outcome is not None:
                return outcome

    async def _restore(self) -> _Next | None:
        """Bring the session back from its backup if the volume lacks it (a new volume)."""
        if self._fresh_link:
            return None
        try:
            await self.ctx.vault.prepare(self.spec.id, self.session_path)
        except RestoreRefused as exc:
            self._set(
                Phase.FAILED,
                reason=f"{exc}; the session was left as it was (regenerate-qr links anew)",
            )
            return _Next.WAIT
        except Exception as exc:
            self._delay = self.ctx.backoff.delay(self._attempt)
            self._attempt += 1
            self._set(
                Phase.RECONNECTING,
                reason=f"session backup unreachable ({exc}); next try in {self._delay:.1f} s",
            )
            return _Next.RETRY
        return None

    def _sink(self, generation: int) -> Callable[[TransportEvent], Awaitable[None]]:
        async def sink(event: TransportEvent) -> None:
            if isinstance(event, InboundMessage):
                await self.ctx.inbound(self.spec.id, event)  # durable before the ack
                self.touch_message(event.timestamp)
            else:
                self._queue.put_nowait((generation, event))

        return sink

    async def _on_event(self, event: TransportEvent) -> _Next | None:
        if isinstance(event, QRCode):
            self._qr_cycles += 1
            if self._qr_cycles > self.ctx.qr_max_cycles:
                return await self._qr_guard(f"nobody scanned {self.ctx.qr_max_cycles} QR codes")
            self._set(Phase.QR_READY, qr=event.code, qr_expires_at=event.expires_at)
        elif isinstance(event, PairingCode):
            self._set(Phase.PAIRING_CODE_READY, pairing_code=event.code)
        elif isinstance(event, Paired):
            self._set(Phase.CONNECTING, jid=event.jid, qr=None, qr_expires_at=None)
            self.ctx.vault.backup_soon(self.spec.id, self.session_path)
        elif isinstance(event, Connected):
            self._attempt = 0
            self._qr_cycles = 0
            self._fresh_link = False
            stamp = now()
            self._set(
                Phase.CONNECTED,
                jid=event.jid,
                connected_at=stamp,
                qr=None,
                qr_expires_at=None,
                pairing_code=None,
                reason=None,
            )
            assert self._session is not None
            self.ctx.on_connected(self.spec.id, self._session)
            logger.info("connected", extra={"account": self.spec.id})
        elif isinstance(event, Disconnected | TemporaryBan):
            return await self._on_lost(event)
        elif isinstance(event, LoggedOut):
            return await self._on_logged_out(event)
        return None

    async def _on_lost(self, event: Disconnected | TemporaryBan) -> _Next:
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        self._delay = self.ctx.backoff.delay(self._attempt)
        self._attempt += 1
        code = event.code if isinstance(event, Disconnected) else None
        if isinstance(event, TemporaryBan):
            self._delay = max(self._delay, event.retry_after)
            await self.ctx.incident(
                Incident(self.spec.id, "temp_ban", "high", {"retryAfter": event.retry_after})
            )
        self._set(
            Phase.RECONNECTING,
            reason=f"{event.reason}; next try in {self._delay:.1f} s",
            reconnects=self.status.reconnects + 1,
            last_disconnect=Disconnect(event.reason, code, now()),
            qr=None,
            qr_expires_at=None,
        )
        return _Next.RETRY

    async def _on_logged_out(self, event: LoggedOut) -> _Next:
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        await self.ctx.vault.forget(self.spec.id, self.session_path)
        logger.warning("logged out", extra={"account": self.spec.id, "reason": event.reason})
        await self.ctx.incident(
            Incident(self.spec.id, "logged_out", "high", {"reason": event.reason})
        )
        self._set(
            Phase.LOGGED_OUT,
            reason="the device was unlinked; call regenerate-qr to link it again",
            last_disconnect=Disconnect(event.reason, event.code, now()),
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
            connected_at=None,
        )
        return _Next.WAIT

    async def _qr_guard(self, why: str) -> _Next:
        await self._stop_session()
        await self.ctx.incident(Incident(self.spec.id, "qr_timeout", "medium", {"why": why}))
        self._set(
            Phase.QR_TIMEOUT,
            reason=f"{why}; call regenerate-qr for a new one",
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
        )
        return _Next.WAIT

    async def _on_command(self, command: Command, current: _Next = _Next.WAIT) -> _Next:
        """Apply a command that arrived while no session runs; refused ones change nothing."""
        try:
            step = await self._apply(command)
        except CommandRefused as exc:
            command.finish(exc)
            return current
        command.finish()
        return step

    async def _apply(self, command: Command) -> _Next:
        kind = command.kind
        if kind == "regenerate":
            if self.status.phase == Phase.CONNECTED:
                raise CommandRefused("the account is connected; there is no QR code to show")
            self._qr_cycles = 0
            self._attempt = 0
            self._fresh_link = self.status.phase == Phase.FAILED  # a backup that will not open
            await self._stop_session()
            return _Next.AGAIN
        if kind == "suspend":
            self.spec = replace(self.spec, suspended=True)
            self.ctx.on_disconnected(self.spec.id)
            await self._stop_session()
            return _Next.WAIT
        if kind == "resume":
            if not self.spec.suspended:
                raise CommandRefused("the account is not suspended")
            self.spec = replace(self.spec, suspended=False)
            return _Next.AGAIN
        if kind == "delete":
            self.ctx.on_disconnected(self.spec.id)
            await self._log_out_and_stop()
            await self.ctx.vault.forget(self.spec.id, self.session_path)
            return _Next.EXIT
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        return _Next.EXIT

    async def _stop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            try:
                await asyncio.wait_for(session.stop(), self.ctx.stop_timeout)
            except (TimeoutError, Exception):
                logger.warning("session did not stop cleanly", extra={"account": self.spec.id})

    async def _connect_for_logout(self) -> Session | None:
        """Open a session only to log the device out (delete of a stopped account)."""
        if not has_session(self.session_path):
            return None
        connected = asyncio.Event()

        async def sink(event: TransportEvent) -> None:
            if isinstance(event, Connected):
                connected.set()

        spec = SessionSpec(self.spec.id, self.spec.phone, self.spec.login, self.session_path)
        session = await self.ctx.transport.open(spec, sink)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(connected.wait(), self.ctx.stop_timeout)
        if connected.is_set():
            return session
        await session.stop()
        return None

    async def _log_out_and_stop(self) -> None:
        if self.status.phase != Phase.CONNECTED:
            await self._stop_session()
        session, self._session = self._session, None
        if session is None:
            session = await self._connect_for_logout()
        if session is not None:
            try:
                await asyncio.wait_for(session.logout(), self.ctx.stop_timeout)
            except (TimeoutError, Exception):
                logger.warning(
                    "logout failed; wiping the session anyway",
                    extra={"account": self.spec.id, "phone": mask_phone(self.spec.phone)},
                )
        self._session = session
        await self._stop_session()
