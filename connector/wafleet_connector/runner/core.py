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
from dataclasses import replace

from wafleet.core.phases import Phase
from wafleet_connector.runner.context import (
    WAITING_PHASES,
    Command,
    CommandKind,
    CommandRefused,
    Next,
    UnlinkPending,
)
from wafleet_connector.runner.events import SessionEvents
from wafleet_connector.runner.unlink import Unlinking
from wafleet_connector.transport import (
    Disconnected,
    InboundMessage,
    PairingCode,
    Receipt,
    SessionSpec,
    TransportEvent,
)
from wafleet_connector.vault import RestoreRefused

logger = logging.getLogger(__name__)


class AccountRunner(SessionEvents, Unlinking):
    """One account's task: its loop, its commands."""

    # ----- outside interface -----------------------------------------------------------
    def _stored_phase_waits(self) -> bool:
        """The stored phase waits for a person's command. Suspended only while the spec
        still asks for it: a resume may have come just before a crash that kept the new
        status from being written, and the spec is the wish."""
        if self.status.phase == Phase.SUSPENDED:
            return self.spec.suspended
        return self.status.phase in WAITING_PHASES

    def start(self) -> None:
        if not self._stored_phase_waits():
            # What was stored describes the last run, not this one: nothing runs yet.
            self._set(Phase.PENDING, reason="waiting for its turn to start", qr=None)
        self.task = asyncio.create_task(self._main(), name=f"account-{self.spec.id}")

    def submit(self, kind: CommandKind) -> asyncio.Future[None]:
        command = Command(kind)
        self._queue.put_nowait(command)
        return command.done

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
        step = Next.AGAIN
        if self._stored_phase_waits():
            step = Next.WAIT
        while True:
            if self.spec.suspended:
                if self.status.phase != Phase.SUSPENDED:
                    self._set(Phase.SUSPENDED, reason="suspended on request", qr=None)
                step = Next.WAIT
            if step is Next.WAIT:
                step = await self._on_command(await self._next_command(), step)
            elif step is Next.RETRY:
                item = await self._next_item(self._delay)
                step = Next.AGAIN if item is None else await self._on_command(item, step)
            elif step is Next.AGAIN:
                step = await self._cycle()
            elif step is Next.UNLINK:
                item = await self._next_item(self._delay)
                step = await self._unlink() if item is None else await self._on_command(item, step)
            if step is Next.EXIT:
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

    async def _cycle(self) -> Next:
        """Run one session from start until it ends or a command ends it."""
        waiter = asyncio.create_task(self.ctx.starts.acquire())
        getter = asyncio.create_task(self._next_item(None))
        done, _ = await asyncio.wait({waiter, getter}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            waiter.cancel()
            command = getter.result()
            assert command is not None
            return await self._on_command(command, Next.AGAIN)
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
        connect_deadline = time.monotonic() + self.ctx.connect_timeout
        while True:
            deadline = pairing_deadline
            if self.status.phase == Phase.CONNECTING:  # nothing reached yet
                deadline = connect_deadline if deadline is None else min(deadline, connect_deadline)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                if self.status.phase == Phase.CONNECTING and time.monotonic() >= connect_deadline:
                    why = f"WhatsApp did not answer within {self.ctx.connect_timeout:g} s"
                    return await self._on_lost(Disconnected(reason=why))
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
            connect_deadline = time.monotonic() + self.ctx.connect_timeout  # it answered
            outcome = await self._on_event(event)
            if outcome is not None:
                return outcome

    async def _restore(self) -> Next | None:
        """Bring the session back from its backup if the volume lacks it (a new volume)."""
        if self._fresh_link:
            return None
        try:
            await self.ctx.vault.prepare(self.spec.resource_name, self.session_path)
        except RestoreRefused as exc:
            self._set(
                Phase.FAILED,
                reason=f"{exc}; the session was left as it was (regenerate-qr links anew)",
            )
            return Next.WAIT
        except Exception as exc:
            self._delay = self.ctx.backoff.delay(self._attempt)
            self._attempt += 1
            self._set(
                Phase.RECONNECTING,
                reason=f"session backup unreachable ({exc}); next try in {self._delay:.1f} s",
            )
            return Next.RETRY
        return None

    def _sink(self, generation: int) -> Callable[[TransportEvent], Awaitable[None]]:
        async def sink(event: TransportEvent) -> None:
            if isinstance(event, InboundMessage):
                await self.ctx.inbound(self.spec.id, event)  # durable before the ack
                self.touch_message(event.timestamp)
            elif isinstance(event, Receipt):
                self.ctx.receipt(self.spec.id, event)  # recorded on the side, in order
            else:
                self._queue.put_nowait((generation, event))

        return sink

    async def _on_command(self, command: Command, current: Next = Next.WAIT) -> Next:
        """Apply a command that arrived while no session runs; refused ones change nothing."""
        try:
            step = await self._apply(command)
        except CommandRefused as exc:
            command.finish(exc)
            return current
        command.finish()
        return step

    async def _apply(self, command: Command) -> Next:
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
            return Next.AGAIN
        if kind == "suspend":
            self.spec = replace(self.spec, suspended=True)
            self.ctx.on_disconnected(self.spec.id)
            await self._stop_session()
            return Next.WAIT
        if kind == "resume":
            if not self.spec.suspended:
                raise CommandRefused("the account is not suspended")
            self.spec = replace(self.spec, suspended=False)
            return Next.AGAIN
        if kind == "delete":
            self.ctx.on_disconnected(self.spec.id)
            step = await self._unlink()
            if step is Next.UNLINK:  # the caller learns it now; the runner keeps trying
                command.finish(UnlinkPending(self.status.reason or "the device is not unlinked"))
            return step
        self.ctx.on_disconnected(self.spec.id)
        await self._stop_session()
        if self.status.phase in (Phase.QR_READY, Phase.PAIRING_CODE_READY):
            # The code dies with the link: withdraw it rather than leave it shown.
            self._set(
                Phase.PENDING,
                reason="the connector stopped: the code shown no longer works; a new one "
                "comes when the account runs again",
                qr=None,
                qr_expires_at=None,
                pairing_code=None,
            )
        return Next.EXIT
