"""A debounced background loop: run a report after a kick (coalescing kicks), and every
``interval`` seconds anyway (a Lease that stops being renewed sends no event).

The loop is the operator's, not a kopf handler's: a timer or daemon on the fleet object
would give it kopf's finalizer, so that deleting it (or uninstalling) would wait for a
running operator. It is started by the startup handler and cancelled at clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wafleet.kube.client import KubeError

logger = logging.getLogger(__name__)

Obj = dict[str, Any]


def changed(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True if writing ``desired`` (a merge patch of the status) would change ``current``."""
    return any(current.get(key) != value for key, value in desired.items())


@dataclass
class Reporter:
    interval: float = 2.0  # seconds between two reports without a kick
    debounce: float = 0.5  # seconds a kick waits for more of them
    fresh: float = 10.0  # seconds a write is trusted over the index's (lagging) copy
    clock: Callable[[], float] = time.monotonic
    # object uid -> (the status last written, when)
    written: dict[str, tuple[Obj, float]] = field(default_factory=dict)
    _kicked: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def shown(self, uid: str, indexed: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status the object shows: what was written moments ago (the index may not
        show it yet), else the index's copy."""
        last = self.written.get(uid)
        if last is not None and self.clock() - last[1] < self.fresh:
            return last[0]
        self.written.pop(uid, None)
        return indexed

    def wrote(self, uid: str, status: Obj) -> None:
        self.written[uid] = (status, self.clock())

    def kick(self) -> None:
        """Something the report shows may have changed: report soon."""
        self._kicked.set()

    async def _wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kicked.wait(), self.interval)
        await asyncio.sleep(self.debounce)
        self._kicked.clear()

    async def run(self, report: Callable[[], Awaitable[None]]) -> None:
        while True:
            await self._wait()
            try:
                await report()
            except KubeError as exc:  # the next round tries again
                logger.warning("fleet status not written: %s %s", exc.status, exc.reason)
            except Exception:
                logger.exception("fleet status report failed")

    def start(self, report: Callable[[], Awaitable[None]]) -> None:
        self._task = asyncio.create_task(self.run(report), name="fleet-status")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
