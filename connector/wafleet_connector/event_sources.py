"""What the connector logs as events beside its store writes: phase changes and receipts.

- **Phases.** Every status a runner reports goes through :meth:`PhaseEvents.observe`; a new
  phase (or, within one, a new QR code or pairing code) becomes an ``account.phase`` event.
  Events are written in order by one task, a batch at a time, retried with backoff while
  the store fails: a status change never waits for its event. A stop writes what is queued
  (bounded); a crash loses at most what was queued, and the next run reports its phases
  again.
- **Receipts.** A delivered or read receipt updates the stored outbound message and logs
  ``message.status`` (:meth:`MessageStore.apply_receipt`). A receipt can arrive before the
  send that it answers is recorded (WhatsApp answers fast): the recorder waits until the
  account's outbox has no send in flight, then applies it; a receipt for a message that was
  not sent through the outbox (sent from the phone) changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from wafleet.core.models import AccountStatus, utcnow
from wafleet.events.model import Event, MessageStatus, phase_event
from wafleet.stores.base import MessageStore
from wafleet_connector.pacing import Backoff
from wafleet_connector.transport import Receipt

logger = logging.getLogger(__name__)

BATCH = 200
SETTLE_TIMEOUT = 10.0
RECEIPT_STATUS: dict[str, MessageStatus] = {
    "delivered": "delivered",
    "read": "read",
    "played": "read",  # a voice message listened to: read, to the outside
}
_Key = tuple[str, str | None, str | None]


def _key(status: AccountStatus) -> _Key:
    return (status.phase.value, status.qr, status.pairing_code)


class _Writer:
    """One task writing queued items in order; retries a failed write with backoff."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff(base=0.5, cap=30.0)

    def put(self, item: object) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)
        self._queue.put_nowait(item)

    async def _write(self, items: list[object]) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        failures = 0
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty() and len(items) < BATCH:
                items.append(self._queue.get_nowait())
            while True:
                try:
                    await self._write(items)
                    failures = 0
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    wait = self._backoff.delay(failures)
                    logger.warning(
                        "%s: write failed; again in %.1f s",
                        self._name,
                        wait,
                        extra={"error": str(exc)[:200]},
                    )
                    await asyncio.sleep(wait)
            for _ in items:
                self._queue.task_done()

    async def close(self, within: float) -> None:
        """Write what is queued (for ``within`` seconds at most), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)
        left = self._queue.qsize()
        if left:
            logger.warning("%s: %d not written at stop", self._name, left)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class PhaseEvents(_Writer):
    def __init__(self, store: MessageStore) -> None:
        super().__init__("phase-events")
        self._store = store
        self._last: dict[str, _Key] = {}

    def observe(self, account_id: str, status: AccountStatus) -> None:
        key = _key(status)
        if self._last.get(account_id) == key:
            return
        self._last[account_id] = key
        self.put(phase_event(account_id, status, at=utcnow()))

    def forget(self, account_id: str) -> None:
        """The account left this process: its next run here reports its phase anew."""
        self._last.pop(account_id, None)

    async def _write(self, items: list[object]) -> None:
        events = [item for item in items if isinstance(item, Event)]
        await self._store.append_events(events)


@dataclass(frozen=True)
class _Receipt:
    account_id: str
    wa_id: str
    status: MessageStatus


class ReceiptRecorder(_Writer):
    def __init__(
        self, store: MessageStore, settled: Callable[[str, float], Awaitable[None]]
    ) -> None:
        super().__init__("receipts")
        self._store = store
        self._settled = settled

    def submit(self, account_id: str, receipt: Receipt) -> None:
        status = RECEIPT_STATUS.get(receipt.status)
        if status is None:
            logger.debug("receipt of an unknown kind ignored", extra={"kind": receipt.status})
            return
        self.put(_Receipt(account_id, receipt.wa_id, status))

    async def _write(self, items: list[object]) -> None:
        for item in items:
            assert isinstance(item, _Receipt)
            await self._settled(item.account_id, SETTLE_TIMEOUT)
            await self._store.apply_receipt(item.account_id, item.wa_id, item.status, utcnow())
