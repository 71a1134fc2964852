"""The accounts mirror: each account's phase, debounced, in Firestore ``accounts/{id}``.

The component that runs an account (a connector, or standalone mode) feeds every
status report to :meth:`AccountsMirror.put` (the session manager's ``on_status``).
``put`` never blocks and never raises: it computes what the document would say
(:class:`~wafleet.stores.firestore_accounts.AccountState`) and leaves the write to
one task per account, which

- waits ``delay`` seconds after the first change before writing, so the changes
  within it cost one write and the last one wins (a QR code that rotates every
  20 s costs one write per code);
- writes nothing for a report that changed nothing the document shows;
- writes one account's document at a time, in order;
- on a failed write, retries with backoff (full jitter, up to a minute), always
  the newest state only, and logs without phone numbers;
- writes only accounts the manager still runs (``spec_of``): a report of an
  account that is being released or deleted, or a pending one by the time it is
  due, is dropped. Together with the writer's conditional writes (see
  ``firestore_accounts``) a connector that let an account go never writes over
  its next owner.

A delete (:meth:`deleted`) replaces whatever is pending with ``status: deleted``,
written at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wafleet import __version__
from wafleet.core.models import AccountSpec, AccountStatus
from wafleet.core.phones import mask_phone
from wafleet.core.settings import Settings
from wafleet_connector.pacing import Backoff

if TYPE_CHECKING:
    from wafleet.stores.firestore_accounts import AccountState

logger = logging.getLogger(__name__)

_DIGITS = re.compile(r"\+?[0-9]{7,15}")


class AccountsSink(Protocol):
    """Where the documents go (``FirestoreAccounts``; a fake in tests)."""

    def state(self, spec: AccountSpec, status: AccountStatus) -> AccountState: ...

    async def write(self, state: AccountState, still_ours: Callable[[], bool]) -> bool: ...

    async def mark_deleted(self, account_id: str) -> bool: ...

    def forget(self, account_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class MirrorConfig:
    delay: float = 2.0  # seconds from the first change to its write
    retry: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    close_timeout: float = 2.0  # seconds close() spends writing what is pending
    delete_wait: float = 5.0  # seconds a delete waits for its mark before going on

    @classmethod
    def from_settings(cls, settings: Settings) -> MirrorConfig:
        return cls(
            delay=settings.accounts_mirror_delay,
            close_timeout=min(2.0, settings.shutdown_timeout / 4),
        )


@dataclass
class _Deleted:
    """A pending ``status: deleted``; the futures learn whether it was written."""

    waiters: list[asyncio.Future[bool]] = field(default_factory=list)

    def resolve(self, written: bool) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(written)


@dataclass
class _Slot:
    """One account's pending write, its deadline, and what was last written."""

    pending: AccountState | _Deleted | None = None
    due: float = 0.0  # when the pending entry is written
    retry_at: float = 0.0  # not before this, after a failure
    written: AccountState | None = None
    busy: bool = False  # a write is in flight
    failures: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


def _describe(error: BaseException) -> str:
    """An error for the log: its type and message, digit runs masked like phones."""
    text = str(error)[:200]
    return f"{type(error).__name__}: {_DIGITS.sub(lambda m: mask_phone(m.group()), text)}"


class AccountsMirror:
    def __init__(
        self,
        sink: AccountsSink,
        spec_of: Callable[[str], AccountSpec | None],
        config: MirrorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sink = sink
        self._spec_of = spec_of
        self.config = config or MirrorConfig()
        self._clock = clock
        self._sleep = sleep
        self._slots: dict[str, _Slot] = {}
        self._closed = False

    # ----- inputs ------------------------------------------------------------------------
    def put(self, account_id: str, status: AccountStatus) -> None:
        """A status report of an account (the manager's ``on_status``). Never raises."""
        if self._closed:
            return
        try:
            spec = self._spec_of(account_id)
            if spec is None:
                return  # not run here (any more): its owner writes it
            state = self._sink.state(spec, status)
        except Exception:
            logger.exception("accounts mirror: status not taken", extra={"account": account_id})
            return
        slot = self._slots.get(account_id)
        if slot is None:
            slot = self._slots[account_id] = _Slot()
        elif slot.pending is None and not slot.busy and slot.written == state:
            return  # nothing the document shows has changed
        self._queue(account_id, slot, state, self._clock() + self.config.delay)

    def deleted(self, account_id: str) -> asyncio.Future[bool]:
        """Mark the account deleted, at once; the future says whether it was written
        (False: no document, superseded by a new status, or the mirror closed)."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._closed:
            waiter.set_result(False)
            return waiter
        slot = self._slots.get(account_id)
        if slot is None:
            slot = self._slots[account_id] = _Slot()
        self._queue(account_id, slot, _Deleted([waiter]), self._clock())
        return waiter

    async def mark_deleted(self, account_id: str) -> bool:
        """:meth:`deleted`, waiting at most ``delete_wait`` seconds for the write (it goes
        on in the background after that). Never raises."""
        waiter = self.deleted(account_id)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.config.delete_wait)
        except TimeoutError:
            logger.warning(
                "accounts mirror: delete mark not written yet; retrying in the background",
                extra={"account": account_id},
            )
            return False

    def _queue(
        self, account_id: str, slot: _Slot, entry: AccountState | _Deleted, due: float
    ) -> None:
        previous = slot.pending
        if isinstance(previous, _Deleted):
            if isinstance(entry, _Deleted):
                entry.waiters[:0] = previous.waiters  # one mark answers both
            else:
                previous.resolve(False)  # a new status after the delete: the account is back
        # The first pending change sets the deadline; later ones ride on it (a delete is due now).
        slot.due = due if previous is None else min(slot.due, due)
        slot.pending = entry
        slot.wake.set()
        if slot.task is None:
            slot.task = asyncio.create_task(
                self._run(account_id, slot), name=f"mirror-{account_id}"
            )

    def _owns(self, account_id: str) -> bool:
        try:
            return self._spec_of(account_id) is not None
        except Exception:
            logger.exception("accounts mirror: ownership unknown", extra={"account": account_id})
            return False

    # ----- the writing task of one account -------------------------------------------------
    async def _run(self, account_id: str, slot: _Slot) -> None:
        try:
            while slot.pending is not None:
                await self._wait_due(slot)
                entry, slot.pending = slot.pending, None
                if entry is None:
                    continue
                slot.busy = True
                try:
                    await self._apply(account_id, slot, entry)
                except Exception as exc:
                    self._failed(account_id, slot, entry, exc)
                else:
                    if slot.failures:
                        logger.info(
                            "accounts mirror: written again",
                            extra={"account": account_id, "failures": slot.failures},
                        )
                    slot.failures = 0
                    slot.retry_at = 0.0
                finally:
                    slot.busy = False
        except Exception:
            logger.exception("accounts mirror: writer stopped", extra={"account": account_id})
        finally:
            slot.task = None
            if (
                slot.pending is None
                and slot.written is None
                and self._slots.get(account_id) is slot
            ):
                del self._slots[account_id]

    async def _wait_due(self, slot: _Slot) -> None:
        """Until the pending entry is due; a new entry (a delete) may bring that forward."""
        while True:
            left = max(slot.due, slot.retry_at) - self._clock()
            if left <= 0:
                return
            slot.wake.clear()
            sleeper = asyncio.ensure_future(self._sleep(left))
            waker = asyncio.ensure_future(slot.wake.wait())
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()
                await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _apply(self, account_id: str, slot: _Slot, entry: AccountState | _Deleted) -> None:
        if isinstance(entry, _Deleted):
            written = await self._sink.mark_deleted(account_id)
            slot.written = None  # whatever comes next (a re-add) is news
            self._sink.forget(account_id)
            entry.resolve(written)
            return
        if not self._owns(account_id):
            slot.written = None  # released: the next owner writes it
            self._sink.forget(account_id)
            return
        if entry == slot.written:
            return
        if await self._sink.write(entry, lambda: self._owns(account_id)):
            slot.written = entry
        else:  # someone else wrote it, and the account is no longer ours
            slot.written = None
            self._sink.forget(account_id)

    def _failed(
        self, account_id: str, slot: _Slot, entry: AccountState | _Deleted, error: Exception
    ) -> None:
        slot.failures += 1
        wait = self.config.retry.delay(slot.failures)
        slot.retry_at = self._clock() + wait
        if slot.pending is None:
            slot.pending = entry  # retried, unless a newer state comes first
        elif isinstance(entry, _Deleted) and not isinstance(slot.pending, _Deleted):
            entry.resolve(False)  # the account came back meanwhile
        elif isinstance(entry, _Deleted) and isinstance(slot.pending, _Deleted):
            slot.pending.waiters.extend(entry.waiters)
        log = logger.warning if slot.failures == 1 else logger.debug
        log(
            "accounts mirror: write failed; again in %.1f s",
            wait,
            extra={"account": account_id, "failures": slot.failures, "error": _describe(error)},
        )

    # ----- shutdown --------------------------------------------------------------------------
    async def flush(self, within: float | None = None) -> None:
        """Write what is pending now (no debounce, no backoff), waiting ``within`` seconds
        at most (default ``close_timeout``); what is not written by then goes on."""
        timeout = self.config.close_timeout if within is None else within
        for slot in self._slots.values():
            if slot.pending is not None:
                slot.due = slot.retry_at = 0.0
                slot.wake.set()
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def close(self) -> None:
        """Write what is pending (bounded by ``close_timeout``), then stop. Never raises."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        tasks = [slot.task for slot in self._slots.values() if slot.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        unwritten = 0
        for slot in self._slots.values():
            if isinstance(slot.pending, _Deleted):
                slot.pending.resolve(False)
            unwritten += slot.pending is not None
        if unwritten:
            logger.warning(
                "accounts mirror: closed with unwritten changes", extra={"count": unwritten}
            )
        self._slots.clear()
        try:
            await self._sink.close()
        except Exception as exc:
            logger.warning("accounts mirror: close failed", extra={"error": _describe(exc)})


def open_accounts_mirror(
    settings: Settings,
    spec_of: Callable[[str], AccountSpec | None],
    *,
    service: str,
    instance_id: str | None = None,
) -> AccountsMirror | None:
    """The mirror the settings ask for: on with ``store=firestore`` and ``accounts_mirror``.

    ``service`` and ``instance_id`` (default: the host name, a pod's name) fill the
    documents' ``worker`` map. Firestore is imported only here, when chosen.
    """
    if settings.store != "firestore" or not settings.accounts_mirror:
        return None
    from wafleet.stores.firestore_accounts import FirestoreAccounts, WorkerInfo  # noqa: PLC0415
    from wafleet.stores.firestore_io import make_client  # noqa: PLC0415

    instance = instance_id or os.environ.get("HOSTNAME") or socket.gethostname() or "wafleet"
    client = make_client(
        settings.firestore_project, settings.firestore_database, settings.firestore_credentials_json
    )
    sink = FirestoreAccounts(client, WorkerInfo(service, instance, __version__), owns_client=True)
    return AccountsMirror(sink, spec_of, MirrorConfig.from_settings(settings))
