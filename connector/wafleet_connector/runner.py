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
from wafleet.core.phones import jid_to_phone, mask_phone
from wafleet_connector.pacing import Backoff, TokenBucket
from wafleet_connector.sessionfiles import has_session
from wafleet_connector.transport import (
    LINK_TIMEOUTS,
    ClientOutdated,
    Connected,
    Disconnected,
    InboundMessage,
    KeepAliveRestored,
    KeepAliveTimeout,
    LoggedOut,
    LogoutError,
    Paired,
    PairingCode,
    QRCode,
    Session,
    SessionSpec,
    StreamReplaced,
    TemporaryBan,
    Transport,
    TransportEvent,
)
from wafleet_connector.vault import RestoreRefused, SessionVault

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
    pairing_timeout: float = 180.0
    pairing_max_codes: int = 3  # each code notifies the phone: then wait for regenerate-qr
    replaced_retry: float = 30.0  # after a stream replaced, one retry after this long
    replaced_stable: float = 300.0  # connected this long: a later replacement is news
    logout_timeout: float = 25.0  # a logout waits this long for WhatsApp's confirmation


class _Next(Enum):
    RETRY = "retry"  # wait out a delay, then start again
    WAIT = "wait"  # wait for a command (logged out, QR-loop guard)
    AGAIN = "again"  # start again now
    UNLINK = "unlink"  # deleting: retry the unlink after a delay
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
        self._pairing_codes = 0  # pairing codes shown since the last regenerate/connect
        self._replaced_retried = False  # the one retry after a stream replaced is spent
        self._connected_since: float | None = None  # monotonic, while connected
        self._unlink_attempt = 0
        self.deleted = False  # the device was unlinked and the session wiped: it is gone
        self.task: asyncio.Task[None] | None = None

    @property
    def session_path(self) -> Path:
        return self.ctx.sessions_dir / f"{self.spec.id}.db"

    # ----- outside interface -----------------------------------------------------------
    def start(self) -> None:
        if self.status.phase not in _WAITING_PHASES:
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
        if self.status.phase in _WAITING_PHASES:
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
            elif step is _Next.UNLINK:
                item = await self._next_item(self._delay)
                step = await self._unlink() if item is None else await self._on_command(item, step)
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
            self._pairing_codes += 1
            if self._pairing_codes > self.ctx.pairing_max_codes:
                limit = self.ctx.pairing_max_codes
                return await self._qr_guard(f"{limit} pairing codes were not entered on the phone")
            self._set(Phase.PAIRING_CODE_READY, pairing_code=event.code)
        elif isinstance(event, Paired | Connected) and not self._own_phone(event.jid):
            return await self._wrong_phone(event.jid)
        elif isinstance(event, Paired):
            self._set(Phase.CONNECTING, jid=event.jid, qr=None, qr_expires_at=None)
            self.ctx.vault.backup_soon(self.spec.id, self.session_path)
        elif isinstance(event, Connected | KeepAliveRestored):
            self._on_connected(event.jid if isinstance(event, Connected) else self.status.jid)
        elif isinstance(event, KeepAliveTimeout):
            self._on_keepalive_lost(event)
        elif isinstance(event, Disconnected) and event.reason in LINK_TIMEOUTS:
            return await self._qr_guard("nobody linked the device before WhatsApp's codes ran out")
        elif isinstance(event, StreamReplaced):
            return await self._on_replaced()
        elif isinstance(event, ClientOutdated):
            return await self._on_outdated(event)
        elif isinstance(event, Disconnected | TemporaryBan):
            return await self._on_lost(event)
        elif isinstance(event, LoggedOut):
            return await self._on_logged_out(event)
        return None

    def _on_connected(self, jid: str | None) -> None:
        """Connected (again): one outbox sender, however many Connected events come."""
        was_connected = self.status.phase == Phase.CONNECTED
        same_stream = self._connected_since is not None  # e.g. a keepalive that recovered
        self._attempt = 0
        self._qr_cycles = 0
        self._pairing_codes = 0
        self._fresh_link = False
        if not same_stream:
            self._connected_since = time.monotonic()
        if was_connected and self.status.jid == jid:
            return
        self._set(
            Phase.CONNECTED,
            jid=jid,
            connected_at=self.status.connected_at if same_stream else now(),
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
            reason=None,
        )
        assert self._session is not None
        self.ctx.on_connected(self.spec.id, self._session)
        logger.info("connected", extra={"account": self.spec.id})

    def _on_keepalive_lost(self, event: KeepAliveTimeout) -> None:
        """The stream may be dead; whatsmeow recovers it (or ends it) by itself."""
        if self.status.phase != Phase.CONNECTED:
            return
        self.ctx.on_disconnected(self.spec.id)
        self._set(
            Phase.RECONNECTING,
            reason=(
                f"WhatsApp stopped answering keepalive pings ({event.error_count} missed); "
                "waiting for the stream to recover"
            ),
        )

    def _own_phone(self, jid: str) -> bool:
        return not jid or jid_to_phone(jid) == self.spec.phone

    async def _wrong_phone(self, jid: str) -> _Next:
        """Another phone linked this device: unlink it at once, and say so."""
        other = mask_phone(jid_to_phone(jid))
        self.ctx.on_disconnected(self.spec.id)
        session, self._session = self._session, None
        unlinked = "it was unlinked at once"
        if session is not None:
            try:
                await asyncio.wait_for(session.logout(), self.ctx.logout_timeout)
            except (LogoutError, TimeoutError) as exc:
                unlinked = f"unlinking it failed ({exc}); remove it on that phone"
                await self._stop(session)
        await self.ctx.vault.forget(self.spec.id, self.session_path)
        await self.ctx.incident(
            Incident(self.spec.id, "wrong_phone", "high", {"linkedPhone": other})
        )
        logger.warning("linked by another phone", extra={"account": self.spec.id})
        self._set(
            Phase.LOGGED_OUT,
            reason=(
                f"the device was linked by {other}, not by this account's phone "
                f"{mask_phone(self.spec.phone)}; {unlinked}. Call regenerate-qr and link it "
                "with the account's phone"
            ),
            qr=None,
            qr_expires_at=None,
            pairing_code=None,
            jid=None,
            connected_at=None,
        )
        return _Next.WAIT

    async def _on_replaced(self) -> _Next:
        """Another client took the session: one retry after a pause, then wait."""
        stable = (
            self._connected_since is not None
            and time.monotonic() - self._connected_since >= self.ctx.replaced_stable
        )
        if stable:
            self._replaced_retried = False
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        await self.ctx.incident(Incident(self.spec.id, "stream_replaced", "high", {}))
        lost = Disconnect("stream_replaced", 440, now())
        if self._replaced_retried:
            self._set(
                Phase.REPLACED,
                reason=(
                    "another client is using this WhatsApp session (its stream was replaced "
                    "twice); stop the other client, then call regenerate-qr to take it back"
                ),
                last_disconnect=lost,
                qr=None,
                qr_expires_at=None,
            )
            return _Next.WAIT
        self._replaced_retried = True
        self._delay = max(self.ctx.replaced_retry, self.ctx.backoff.delay(self._attempt))
        self._set(
            Phase.RECONNECTING,
            reason=(
                "another client took over this WhatsApp session (stream replaced); "
                f"one retry in {self._delay:.0f} s"
            ),
            reconnects=self.status.reconnects + 1,
            last_disconnect=lost,
            qr=None,
            qr_expires_at=None,
        )
        return _Next.RETRY

    async def _on_outdated(self, event: ClientOutdated) -> _Next:
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        await self.ctx.incident(Incident(self.spec.id, "client_outdated", "high", {}))
        self._set(
            Phase.FAILED,
            reason=(
                "WhatsApp refuses this client version as outdated (405); upgrade wafleet to a "
                "release with a newer WhatsApp library, then restart it or call regenerate-qr"
            ),
            last_disconnect=Disconnect(event.reason, event.code, now()),
            qr=None,
            qr_expires_at=None,
        )
        return _Next.WAIT

    async def _on_lost(self, event: Disconnected | TemporaryBan) -> _Next:
        self._connected_since = None
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
            self._pairing_codes = 0
            self._replaced_retried = False
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
            step = await self._unlink()
            if step is _Next.UNLINK:  # the caller learns it now; the runner keeps trying
                command.finish(UnlinkPending(self.status.reason or "the device is not unlinked"))
            return step
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        return _Next.EXIT

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

    # ----- delete: unlink the device, then wipe ------------------------------------------
    async def _unlink(self) -> _Next:
        """Log the device out; wipe the session only once WhatsApp confirmed the unlink."""
        try:
            await self._log_out()
        except (LogoutError, TimeoutError) as exc:
            why = str(exc) or "timed out"
            self._delay = self.ctx.backoff.delay(self._unlink_attempt)
            self._unlink_attempt += 1
            logger.warning(
                "unlink failed; the session is kept and the logout retried",
                extra={"account": self.spec.id, "phone": mask_phone(self.spec.phone)},
            )
            self._set(
                Phase.FAILED,
                reason=(
                    f"deleting: the device could not be unlinked from WhatsApp ({why}); its "
                    f"session is kept and the logout is retried in {self._delay:.0f} s"
                ),
                qr=None,
                qr_expires_at=None,
            )
            return _Next.UNLINK
        await self.ctx.vault.forget(self.spec.id, self.session_path)
        self.deleted = True
        return _Next.EXIT

    async def _log_out(self) -> None:
        """Unlink the device: through the running session, or one opened for it."""
        if self.status.phase != Phase.CONNECTED:
            await self._stop_session()
        session, self._session = self._session, None
        if session is None:
            if not await asyncio.to_thread(has_session, self.session_path):
                return  # never linked (or already unlinked): nothing to log out
            session = await self._connect_for_logout()
        await asyncio.wait_for(session.logout(), self.ctx.logout_timeout)

    async def _connect_for_logout(self) -> Session:
        """Open a session only to log the device out (delete of a stopped account)."""
        connected = asyncio.Event()
        gone: list[LoggedOut] = []

        async def sink(event: TransportEvent) -> None:
            if isinstance(event, InboundMessage):
                await self.ctx.inbound(self.spec.id, event)
            elif isinstance(event, Connected):
                connected.set()
            elif isinstance(event, LoggedOut):
                gone.append(event)
                connected.set()

        spec = SessionSpec(self.spec.id, self.spec.phone, self.spec.login, self.session_path)
        session = await self.ctx.transport.open(spec, sink)
        try:
            await asyncio.wait_for(connected.wait(), self.ctx.logout_timeout)
        except TimeoutError:
            await self._stop(session)
            raise LogoutError("could not connect to WhatsApp to unlink the device") from None
        if gone:  # WhatsApp says the device is gone already: that is the unlink
            await self._stop(session)
            return _Unlinked()
        return session


class _Unlinked:
    """A session whose device WhatsApp already removed: logging out is done."""

    async def send_text(self, to_jid: str, text: str) -> str:
        raise LogoutError("unlinked")

    async def logout(self) -> None:
        return None

    async def stop(self) -> None:
        return None


# Phases that wait for a command, also across a restart of the connector.
_WAITING_PHASES = (Phase.LOGGED_OUT, Phase.QR_TIMEOUT, Phase.SUSPENDED, Phase.REPLACED)
