"""The outbox sender: sends each connected account's queued messages, at its own pace.

Every send was first queued in the store with an idempotency key. The sender
claims an item (queued -> sending), sends it, and records the result. A send
that surely did not reach WhatsApp goes back to the queue with a backoff; one
that may have reached it is marked ambiguous and never re-sent. Items a crash
left in 'sending' are marked ambiguous at start (``recover_interrupted``).

How each send ended, and how long a sent one waited from queued to sent, go to its
``SendMetrics`` (:mod:`wafleet_connector.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from wafleet.core.models import Incident, Message, OutboxItem
from wafleet.stores.base import MessageStore
from wafleet_connector.metrics import SendMetrics
from wafleet_connector.pacing import Backoff, TokenBucket
from wafleet_connector.transport import SendError, Session

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # one "which accounts have queued items" query per shard, this often
IDLE_SECONDS = 30.0  # an idle account's own re-check, in case a wake-up was missed
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class OutboxConfig:
    send_rate: float = 1.0  # per account, messages per second
    send_burst: int = 5
    retry: Backoff = field(default_factory=lambda: Backoff(base=2.0, cap=300.0))
    stop_timeout: float = 3.0


@dataclass
class _Worker:
    session: Session
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    sending: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while not sending


class OutboxSender:
    def __init__(
        self,
        store: MessageStore,
        config: OutboxConfig,
        incident: Callable[[Incident], Awaitable[None]],
        on_sent: Callable[[str, datetime], None],
        metrics: SendMetrics | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._incident = incident
        self._on_sent = on_sent
        self.metrics = metrics or SendMetrics()
        self._buckets: dict[str, TokenBucket] = {}
        self._workers: dict[str, _Worker] = {}
        self._poller: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        """Wake the accounts that have queued items: one query for the whole shard, instead
        of one per account (items can be queued by another process, e.g. the API pod)."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if not self._workers:
                continue
            try:
                pending = await self._store.pending_accounts()
            except Exception as exc:
                logger.warning("outbox poll failed", extra={"error": str(exc)})
                continue
            for account_id in pending:
                self.notify(account_id)

    def start(self, account_id: str, session: Session) -> None:
        """Send for ``account_id`` through ``session``; one sender per account at most."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="outbox-poll")
        running = self._workers.get(account_id)
        if running is not None and running.session is session:
            running.wake.set()
            return
        self.stop_nowait(account_id)
        bucket = self._buckets.setdefault(
            account_id, TokenBucket(self._config.send_rate, self._config.send_burst)
        )
        worker = _Worker(session=session)
        worker.task = asyncio.create_task(
            self._run(account_id, worker, bucket), name=f"outbox-{account_id}"
        )
        self._workers[account_id] = worker

    async def settled(self, account_id: str, within: float) -> None:
        """Return once the account has no send in flight (its result is recorded), or after
        ``within`` seconds."""
        worker = self._workers.get(account_id)
        if worker is None or not worker.sending:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.idle.wait(), within)

    def notify(self, account_id: str) -> None:
        worker = self._workers.get(account_id)
        if worker is not None:
            worker.wake.set()

    def stop_nowait(self, account_id: str) -> None:
        """Stop sending for an account; a send in flight is left to finish on its own."""
        worker = self._workers.pop(account_id, None)
        if worker is not None and worker.task is not None and not worker.sending:
            worker.task.cancel()

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        workers = list(self._workers.values())
        self._workers.clear()
        tasks = [worker.task for worker in workers if worker.task is not None]
        for worker in workers:
            if worker.task is not None and not worker.sending:
                worker.task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self._config.stop_timeout)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self, account_id: str, worker: _Worker, bucket: TokenBucket) -> None:
        while self._workers.get(account_id) is worker:
            item = await self._store.claim_next(account_id, datetime.now(UTC))
            if item is None:
                worker.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.wake.wait(), IDLE_SECONDS)
                continue
            await bucket.acquire()
            worker.sending = True
            worker.idle.clear()
            try:
                await self._send(worker.session, item)
            finally:
                worker.sending = False
                worker.idle.set()

    async def _send(self, session: Session, item: OutboxItem) -> None:
        try:
            wa_id = await session.send_text(item.to_jid, item.body)
        except SendError as exc:
            await self._failed(item, exc)
            return
        sent_at = datetime.now(UTC)
        await self._store.mark_sent(item.id, wa_id, sent_at)
        self.metrics.sent(item.created_at, sent_at)
        await self._store.save_messages(
            [
                Message(
                    account_id=item.account_id,
                    client_jid=item.to_jid,
                    direction="outbound",
                    body=item.body,
                    wa_message_id=wa_id,
                    status="sent",
                    ts_client=sent_at,
                    ts_server=sent_at,
                )
            ]
        )
        self._on_sent(item.account_id, sent_at)

    async def _failed(self, item: OutboxItem, exc: SendError) -> None:
        if exc.reached:
            await self._store.mark_final(
                item.id, "ambiguous", f"{exc}: it may have reached WhatsApp; not re-sent"
            )
            self.metrics.ended("ambiguous")
            await self._incident(
                Incident(item.account_id, "send_ambiguous", "medium", {"outboxId": item.id})
            )
        elif item.attempt_count + 1 >= MAX_ATTEMPTS:
            await self._store.mark_final(item.id, "failed", f"{exc} (after {MAX_ATTEMPTS} tries)")
            self.metrics.ended("failed")
        else:
            delay = self._config.retry.delay(item.attempt_count)
            await self._store.mark_retry(
                item.id, str(exc), datetime.now(UTC) + timedelta(seconds=delay)
            )
            self.metrics.ended("retried")
