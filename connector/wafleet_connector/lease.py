"""The shard Lease: exactly one connector drives a shard's sessions.

Two processes driving one WhatsApp session would replace each other's stream
and corrupt its encryption state, so a connector starts no session before it
holds ``<statefulset>-shard-<N>`` and stops them all if it loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from wafleet.core.models import iso
from wafleet.kube.account_cr import lease_is_fresh
from wafleet.kube.client import LEASES, Conflict, KubeClient, KubeError, NotFound

logger = logging.getLogger(__name__)


def _now() -> str:
    # MicroTime: the API wants microseconds.
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ShardLease:
    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        name: str,
        holder: str,
        duration: int,
        on_lost: Callable[[], Awaitable[None]],
    ) -> None:
        self._kube = kube
        self._namespace = namespace
        self.name = name
        self._holder = holder
        self._duration = duration
        self._on_lost = on_lost
        self.held = asyncio.Event()
        self.lost = asyncio.Event()  # set when a held lease is lost, cleared when regained
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shard-lease")

    def _spec(self, transitions: int, acquired: str | None = None) -> dict[str, Any]:
        now = _now()
        return {
            "holderIdentity": self._holder,
            "leaseDurationSeconds": self._duration,
            "acquireTime": acquired or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def _try(self) -> bool:
        """Take or renew the lease once; True if this process holds it afterwards."""
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
        lease["spec"] = self._spec(transitions, spec.get("acquireTime") if mine else None)
        try:
            await self._kube.replace(LEASES, self._namespace, self.name, lease)
        except Conflict:
            return False
        return True

    async def _run(self) -> None:
        while True:
            try:
                holding = await self._try()
            except (KubeError, OSError, httpx.HTTPError) as exc:
                logger.warning(
                    "lease renewal failed", extra={"lease": self.name, "error": str(exc)}
                )
                holding = False
            if holding and not self.held.is_set():
                logger.info("lease acquired", extra={"lease": self.name})
                self.lost.clear()
                self.held.set()
            elif not holding and self.held.is_set():
                logger.error("lease lost; stopping every session", extra={"lease": self.name})
                self.held.clear()
                self.lost.set()
                await self._on_lost()
            await asyncio.sleep(self._duration / 3 if holding else 1.0)

    async def release(self) -> None:
        """Stop renewing and hand the lease back, so a successor need not wait it out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.held.is_set():
            return
        self.held.clear()
        with contextlib.suppress(KubeError, OSError):
            lease = await self._kube.get(LEASES, self._namespace, self.name)
            if (lease.get("spec") or {}).get("holderIdentity") == self._holder:
                lease["spec"].update(
                    holderIdentity=None, leaseDurationSeconds=1, renewTime=iso(datetime.now(UTC))
                )
                await self._kube.replace(LEASES, self._namespace, self.name, lease)
