"""The session manager: one runner per account of this shard, and what they share.

It owns the start token bucket, the inbound journal, the outbox sender and the
debounced status writer, and stops everything in order on shutdown. It also says what
the shard's metrics show of each account (``session_stats``, :mod:`.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from wafleet.backups.base import SessionBackups
from wafleet.core.models import AccountSpec, AccountStatus, Incident, Message
from wafleet.core.phases import Phase
from wafleet.core.settings import Settings
from wafleet.stores.base import MessageStore
from wafleet_connector.event_sources import PhaseEvents, ReceiptRecorder
from wafleet_connector.journal import InboundJournal
from wafleet_connector.metrics import MessageCounts, SendMetrics, SessionStats
from wafleet_connector.outbox import OutboxConfig, OutboxSender
from wafleet_connector.outbox_depth import OutboxDepths
from wafleet_connector.pacing import Backoff, TokenBucket
from wafleet_connector.runner import AccountRunner, CommandKind, RunnerContext
from wafleet_connector.transport import InboundMessage, Receipt, Session, Transport
from wafleet_connector.vault import SessionVault

logger = logging.getLogger(__name__)

STATUS_DEBOUNCE = 0.1


class UnknownAccount(KeyError):
    pass


class StatusWriter(Protocol):
    """Where account status goes: the registry (standalone) or the CR status (cluster)."""

    async def write_statuses(self, statuses: dict[str, AccountStatus]) -> None: ...


@dataclass(frozen=True)
class ManagerConfig:
    sessions_dir: Path
    journal_path: Path
    start_rate: float = 2.0
    start_burst: int = 2
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    qr_max_cycles: int = 6
    pairing_max_codes: int = 3
    session_stop_timeout: float = 5.0
    logout_timeout: float = 25.0
    connect_timeout: float = 60.0  # a start that reaches nothing this long is retried
    replaced_retry: float = 30.0  # after a stream replaced, the one retry waits this long
    backup_interval: float = 600.0  # seconds between backups of each connected session
    outbox: OutboxConfig = field(default_factory=OutboxConfig)

    @classmethod
    def from_settings(cls, settings: Settings) -> ManagerConfig:
        return cls(
            sessions_dir=settings.sessions_dir,
            journal_path=settings.data_dir / "journal.db",
            start_rate=settings.start_rate,
            start_burst=settings.start_burst,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            qr_max_cycles=settings.qr_max_cycles,
            pairing_max_codes=settings.pairing_max_codes,
            session_stop_timeout=min(5.0, settings.shutdown_timeout / 2),
            logout_timeout=settings.logout_timeout,
            connect_timeout=settings.connect_timeout,
            outbox=OutboxConfig(send_rate=settings.send_rate, send_burst=settings.send_burst),
        )


class SessionManager:
    def __init__(
        self,
        config: ManagerConfig,
        transport: Transport,
        store: MessageStore,
        statuses: StatusWriter,
        backups: SessionBackups | None = None,
    ) -> None:
        self.config = config
        self.vault = SessionVault(backups)
        self.transport = transport
        self._store = store
        self._statuses = statuses
        self.journal = InboundJournal(config.journal_path, store)
        self.sends = SendMetrics()
        self.outbox = OutboxSender(store, config.outbox, self._incident, self._on_sent, self.sends)
        self.outbox_depths = OutboxDepths(store)
        self._messages: dict[str, MessageCounts] = {}  # accounts running here only
        self.phases = PhaseEvents(store)
        self.receipts = ReceiptRecorder(store, self.outbox.settled)
        self._runners: dict[str, AccountRunner] = {}
        self._dirty: dict[str, AccountStatus] = {}
        self._dirty_event = asyncio.Event()
        self._status_failures = 0
        self._status_backoff = Backoff(base=0.5, cap=30.0)
        self._flusher: asyncio.Task[None] | None = None
        self._ctx = RunnerContext(
            transport=transport,
            starts=TokenBucket(config.start_rate, config.start_burst),
            backoff=Backoff(config.backoff_base, config.backoff_max),
            sessions_dir=config.sessions_dir,
            qr_max_cycles=config.qr_max_cycles,
            stop_timeout=config.session_stop_timeout,
            inbound=self._inbound,
            report=self._report,
            incident=self._incident,
            on_connected=self._connected,
            on_disconnected=self.outbox.stop_nowait,
            vault=self.vault,
            pairing_max_codes=config.pairing_max_codes,
            logout_timeout=config.logout_timeout,
            connect_timeout=config.connect_timeout,
            replaced_retry=config.replaced_retry,
            receipt=self._receipt,
        )
        self._backup_task: asyncio.Task[None] | None = None
        # Called when a delete that had to wait for the unlink has finished on its own
        # (``remove()`` raised UnlinkPending earlier): drop the account's record then.
        self.on_deleted: Callable[[str], Coroutine[Any, Any, None]] | None = None
        # Called with every status a runner reports, before the debounced writer merges
        # them (the writer may fold a short Reconnecting into the Connected after it).
        self.on_status: Callable[[str, AccountStatus], None] | None = None
        self._removing: set[str] = set()
        self._callbacks: set[asyncio.Task[None]] = set()

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self.config.sessions_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self.journal.start()
        interrupted = await self._store.recover_interrupted()
        if interrupted:
            logger.warning(
                "sends cut by the last stop marked ambiguous", extra={"count": len(interrupted)}
            )
        self._flusher = asyncio.create_task(self._flush_loop(), name="status-flusher")
        self._backup_task = asyncio.create_task(self._backup_loop(), name="session-backups")

    async def _backup_loop(self) -> None:
        """Back up every connected session now and then (unchanged ones cost a read)."""
        while True:
            await asyncio.sleep(self.config.backup_interval)
            for runner in list(self._runners.values()):
                if runner.status.phase == Phase.CONNECTED:
                    self.vault.backup_soon(runner.spec.resource_name, runner.session_path)

    async def close(self) -> None:
        """Stop every session, flush the journal and the statuses. Bounded in time."""
        runners = list(self._runners.values())
        futures = [runner.submit("shutdown") for runner in runners]
        tasks = [runner.task for runner in runners if runner.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.session_stop_timeout + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, *futures, return_exceptions=True)
        self._runners.clear()
        await self.outbox.close()
        await self.receipts.close(within=2.0)
        await self.phases.close(within=2.0)
        await self.journal.close()
        if self._backup_task is not None:
            self._backup_task.cancel()
        await self.vault.close()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._flush_statuses()
        await self.transport.close()

    # ----- accounts --------------------------------------------------------------------
    def ensure(self, spec: AccountSpec, status: AccountStatus | None = None) -> None:
        """Run ``spec`` if it is not running; apply a change of ``suspended`` if it is."""
        runner = self._runners.get(spec.id)
        if runner is None:
            runner = AccountRunner(spec, status or AccountStatus(), self._ctx)
            self._runners[spec.id] = runner
            runner.start()
            assert runner.task is not None
            runner.task.add_done_callback(lambda _: self._runner_ended(runner))
        elif runner.spec.suspended != spec.suspended:
            runner.submit("suspend" if spec.suspended else "resume")

    def status(self, account_id: str) -> AccountStatus | None:
        runner = self._runners.get(account_id)
        return None if runner is None else runner.status

    def spec(self, account_id: str) -> AccountSpec | None:
        """The spec of an account this manager runs; None for one it does not run, or is
        ending (being released or deleted): it is no longer this manager's to report."""
        runner = self._runners.get(account_id)
        if runner is None or account_id in self._removing:
            return None
        return runner.spec

    def account_ids(self) -> list[str]:
        return list(self._runners)

    async def command(self, account_id: str, kind: CommandKind) -> None:
        runner = self._runners.get(account_id)
        if runner is None:
            raise UnknownAccount(account_id)
        await runner.submit(kind)

    async def remove(self, account_id: str) -> None:
        """Log the device out, wipe its session and forget the account."""
        await self._end(account_id, "delete")

    async def release(self, account_id: str) -> None:
        """Stop running the account and forget it, keeping its session (it moved away)."""
        await self._end(account_id, "shutdown")

    def session_path(self, spec: AccountSpec) -> Path:
        """Where this shard's volume keeps the account's session (the runner's file)."""
        return self.config.sessions_dir / f"{spec.id}.db"

    async def hand_over(self, spec: AccountSpec) -> int:
        """Let the account go to another shard: stop its session if it runs (keeping it),
        store every inbound message it delivered, back the session up; the backup
        generation the next shard must start from (0: this volume has no session, the next
        shard takes the latest backup, if any). The account is forgotten here, also when
        this fails (the caller decides whether it runs here again)."""
        if spec.id in self._runners:
            await self.release(spec.id)
        await self.journal.flush()
        return await self.vault.hand_over(spec.resource_name, self.session_path(spec))

    async def take_over(self, spec: AccountSpec, generation: int) -> int:
        """Put in place the session another shard handed over in ``generation`` (0: the
        latest backup, or none), before the account runs here; the generation placed.
        Raises BackupTooOld while that generation is not there, RestoreRefused for a backup
        that cannot be opened."""
        if spec.id in self._runners:
            raise RuntimeError(f"{spec.id} already runs here: a restore would replace its file")
        return await self.vault.take_over(spec.resource_name, self.session_path(spec), generation)

    async def release_all(self, within: float | None = None) -> None:
        """Stop every session, keeping them (the shard's lease was lost), in ``within``
        seconds at most: a runner still busy then is cancelled (its session stopped)."""
        ends = [asyncio.ensure_future(self.release(a)) for a in list(self._runners)]
        if not ends:
            return
        _, late = await asyncio.wait(ends, timeout=within)
        for end in late:
            end.cancel()
        cancelled = [r.task for r in self._runners.values() if r.task and not r.task.done()]
        for task in cancelled:
            task.cancel()  # the runner stops its session on the way out
        await asyncio.gather(*ends, *cancelled, return_exceptions=True)
        for account_id in list(self._runners):  # whatever ended is forgotten: none runs now
            self._runners.pop(account_id, None)
            self._forget(account_id)

    async def _end(self, account_id: str, kind: CommandKind) -> None:
        """End a runner with ``kind``; UnlinkPending (delete) keeps it, retrying on its own."""
        runner = self._runners.get(account_id)
        if runner is None:
            raise UnknownAccount(account_id)
        self._removing.add(account_id)
        try:
            if runner.task is None or not runner.task.done():
                await runner.submit(kind)
            if runner.task is not None:
                await asyncio.gather(runner.task, return_exceptions=True)
        finally:
            self._removing.discard(account_id)
        self._runners.pop(account_id, None)
        self._forget(account_id)

    def _forget(self, account_id: str) -> None:
        """What the manager kept of an account it no longer runs."""
        self._dirty.pop(account_id, None)
        self.phases.forget(account_id)
        self._messages.pop(account_id, None)

    def _runner_ended(self, runner: AccountRunner) -> None:
        """A runner that ended by itself after a delayed unlink: finish the delete."""
        account_id = runner.spec.id
        if not runner.deleted or account_id in self._removing:
            return
        if self._runners.get(account_id) is runner:
            del self._runners[account_id]
        self._forget(account_id)
        if self.on_deleted is not None:
            task = asyncio.create_task(self.on_deleted(account_id), name=f"deleted-{account_id}")
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    def notify_outbox(self, account_id: str) -> None:
        self.outbox.notify(account_id)

    # ----- metrics ---------------------------------------------------------------------
    def _counts(self, account_id: str) -> MessageCounts | None:
        if account_id not in self._runners:
            return None  # ended meanwhile: no series for it
        return self._messages.setdefault(account_id, MessageCounts())

    def session_stats(self) -> list[SessionStats]:
        """Every account this manager runs, as its metrics show it (in the event loop)."""
        journal = self.journal.depths()
        return [
            SessionStats(
                account_id=account_id,
                phase=runner.status.phase,
                suspended=runner.spec.suspended,
                reconnects=runner.status.reconnects,
                messages=self._messages.get(account_id, MessageCounts()),
                journal_depth=journal.get(account_id, 0),
                outbox_depth=self.outbox_depths.get(account_id),
            )
            for account_id, runner in self._runners.items()
        ]

    async def refresh_metrics(self) -> None:
        """Count the outbox depths (at most every few seconds, see outbox_depth)."""
        await self.outbox_depths.refresh(self.account_ids())

    # ----- callbacks from runners ------------------------------------------------------
    async def _inbound(self, account_id: str, event: InboundMessage) -> None:
        added = await self.journal.append(
            Message(
                account_id=account_id,
                client_jid=event.chat_jid,
                direction="inbound",
                body=event.text,
                wa_message_id=event.wa_id,
                status="delivered",
                ts_client=event.timestamp,
            )
        )
        counts = self._counts(account_id) if added else None
        if counts is not None:
            counts.received += 1

    def _receipt(self, account_id: str, receipt: Receipt) -> None:
        self.receipts.submit(account_id, receipt)

    def _connected(self, account_id: str, session: Session) -> None:
        self.outbox.start(account_id, session)

    def _on_sent(self, account_id: str, at: datetime) -> None:
        runner = self._runners.get(account_id)
        counts = self._counts(account_id)
        if counts is not None:
            counts.sent += 1
        if runner is not None:
            runner.touch_message(at)

    async def _incident(self, incident: Incident) -> None:
        try:
            await self._store.record_incident(incident)
        except Exception:
            logger.exception("could not record incident", extra={"type": incident.type})

    def _report(self, account_id: str, status: AccountStatus) -> None:
        self.phases.observe(account_id, status)
        if self.on_status is not None:
            self.on_status(account_id, status)
        self._dirty[account_id] = status
        self._dirty_event.set()

    async def _flush_statuses(self) -> float | None:
        """Write what is dirty; on failure keep it and return how long to wait (seconds)."""
        if not self._dirty:
            return None
        batch, self._dirty = self._dirty, {}
        try:
            await self._statuses.write_statuses(batch)
        except Exception as exc:
            self._status_failures += 1
            wait = self._status_backoff.delay(self._status_failures)
            retry_after = getattr(exc, "retry_after", None)  # a throttled API server
            if isinstance(retry_after, int | float):
                wait = max(wait, float(retry_after))
            logger.warning(
                "status write failed; again in %.1f s", wait, extra={"error": str(exc)[:200]}
            )
            for key, value in batch.items():
                self._dirty.setdefault(key, value)
            return wait
        self._status_failures = 0
        return None

    async def _flush_loop(self) -> None:
        """Debounced writes; a failed write is retried with backoff even if nothing new
        comes (the last status of an account must not wait for its next change)."""
        while True:
            if not self._dirty:
                await self._dirty_event.wait()
            await asyncio.sleep(STATUS_DEBOUNCE)
            self._dirty_event.clear()
            wait = await self._flush_statuses()
            if wait is not None:
                await asyncio.sleep(wait)
