"""The shard Lease: exactly one connector drives a shard's sessions.

Two processes driving one WhatsApp session would replace each other's stream and corrupt
its encryption state, so a connector starts no session before it holds
``<statefulset>-shard-<N>`` and stops them all before anyone else could take it.

Timing, as client-go's leader election does it (``LeaseTiming``): a holder renews every
``retry`` seconds; a failed renewal (429, 5xx, a timeout, a refusal) is retried at that
pace, after Retry-After when the server gives one, until ``renew_deadline`` has passed
since the last successful renewal. Then the lease counts as lost and every session stops
(fencing): the deadline is shorter than the lease by at least ``fence`` seconds, the time
a stop may take, so sessions are down before another pod may acquire the lease (which it
may only do once ``duration`` has passed since our last renewal).

``renewTime`` and ``acquireTime`` are MicroTime: always six fractional digits.

For the metrics (:mod:`wafleet_connector.metrics`) it counts the renewals the API server
failed (``renew_failures``) and the losses (``losses``); ``held`` says whether it holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wafleet.kube.account_cr import lease_is_fresh
from wafleet.kube.client import LEASES, Conflict, KubeClient, KubeError, NotFound

logger = logging.getLogger(__name__)


def micro_time(at: datetime | None = None) -> str:
    """A metav1.MicroTime: RFC 3339 with exactly six fractional digits, in UTC."""
    stamp = (at or datetime.now(UTC)).astimezone(UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LeaseTiming:
    duration: int = 15  # leaseDurationSeconds written on the Lease
    fence: float = 6.0  # seconds a stop of every session may take

    def __post_init__(self) -> None:
        if self.duration < 3:
            raise ValueError("a lease lasts at least 3 seconds")

    @property
    def renew_deadline(self) -> float:
        """Renewals may fail this long before the holder gives up (client-go: 10 of 15)."""
        return max(1.0, min(self.duration * 2 / 3, self.duration - self.fence))

    @property
    def retry(self) -> float:
        """Seconds between renewals, and between tries after a failure (client-go: 2)."""
        return max(0.2, self.renew_deadline / 5)


class ShardLease:
    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        name: str,
        holder: str,
        timing: LeaseTiming,
        on_lost: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self.name = name
        self._holder = holder
        self.timing = timing
        self._on_lost = on_lost
        self._clock = clock
        self.held = asyncio.Event()
        self.lost = asyncio.Event()  # set when a held lease is lost, cleared when regained
        self.renewed_at: float | None = None  # monotonic time of the last good renewal
        self.renew_failures = 0  # tries the API server failed or refused (a KubeError)
        self.losses = 0  # times a held lease was lost
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shard-lease")

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = micro_time()
        return {
            "holderIdentity": self._holder,
            "leaseDurationSeconds": self.timing.duration,
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _try(self) -> bool:
        """Take or renew the lease once; True if this process holds it afterwards.

        Raises KubeError when the API could not say (the caller retries until its deadline).
        """
        try:
            lease = await self._kube.get(LEASES, self._namespace, self.name)
        except NotFound:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name},
                "spec": self._spec(0),
            }
            try:
                await self._kube.create(LEASES, self._namespace, body)
            except Conflict:
                return False
            return True
        spec = lease.get("spec") or {}
        mine = spec.get("holderIdentity") == self._holder
        if not mine and lease_is_fresh(spec, datetime.now(UTC)):
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = spec.get("acquireTime") if mine else None
        lease["spec"] = self._spec(transitions, acquired if isinstance(acquired, str) else None)
        try:
            await self._kube.replace(LEASES, self._namespace, self.name, lease)
        except Conflict:
            return False  # someone wrote it since our read: look again next round
        return True

    async def _run(self) -> None:
        while True:
            pause = self.timing.retry
            try:
                holding = await self._try()
            except KubeError as exc:
                self.renew_failures += 1
                holding = self._within_deadline()
                if exc.retry_after is not None:
                    pause = max(pause, exc.retry_after)
                logger.warning(
                    "lease renewal failed",
                    extra={"lease": self.name, "error": str(exc), "holding": holding},
                )
            else:
                if holding:
                    self.renewed_at = self._clock()
            await self._settle(holding)
            if holding and self.renewed_at is not None:  # never sleep past the deadline
                left = self.renewed_at + self.timing.renew_deadline - self._clock()
                pause = max(0.05, min(pause, left))
            await asyncio.sleep(pause)

    def _within_deadline(self) -> bool:
        """After a failed renewal: still ours if the last good one is recent enough."""
        if not self.held.is_set() or self.renewed_at is None:
            return False
        return self._clock() - self.renewed_at < self.timing.renew_deadline

    async def _settle(self, holding: bool) -> None:
        if holding and not self.held.is_set():
            logger.info("lease acquired", extra={"lease": self.name})
            self.lost.clear()
            self.held.set()
        elif not holding and self.held.is_set():
            logger.error("lease lost; stopping every session", extra={"lease": self.name})
            self.held.clear()
            self.lost.set()
            self.renewed_at = None
            self.losses += 1
            await self._on_lost()

    async def release(self) -> None:
        """Stop renewing and hand the lease back, so a successor need not wait it out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.held.is_set():
            return
        self.held.clear()
        for attempt in range(3):
            try:
                await self._hand_back()
                return
            except KubeError as exc:
                logger.warning(
                    "lease release failed; a successor waits the lease out",
                    extra={"lease": self.name, "error": str(exc), "attempt": attempt + 1},
                )
                if not exc.transient:
                    return
                await asyncio.sleep(exc.retry_after or 0.5)

    async def _hand_back(self) -> None:
        lease = await self._kube.get(LEASES, self._namespace, self.name)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self._holder:
            return
        now = micro_time()
        spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=now, acquireTime=now)
        lease["spec"] = spec
        await self._kube.replace(LEASES, self._namespace, self.name, lease)
        logger.info("lease released", extra={"lease": self.name})
