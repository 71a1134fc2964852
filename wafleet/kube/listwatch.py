"""List, then watch from the list's resourceVersion, forever: the loop behind every cache.

What client-go's reflector does, for the connector's shard watch and the API's account
cache: a watch that ends or goes silent (WatchTimeout) is resumed from the last
resourceVersion seen (bookmarks included); 410 Gone lists again; a throttled or failing
API (429, 5xx, unreachable) is retried with backoff, after Retry-After when given; a
handler that raises is logged and does not end the loop. ``contact`` tells how recent the
last word from the API server is, so a cache can say it is stale.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from wafleet.kube.client import Gone, KubeClient, KubeError, Resource

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
OnList = Callable[[list[Obj]], Awaitable[None]]
OnEvent = Callable[[str, Obj], Awaitable[None]]


@dataclass
class ListWatch:
    kube: KubeClient
    resource: Resource
    namespace: str
    on_list: OnList
    on_event: OnEvent
    label_selector: str = ""
    watch_seconds: int = 300  # the server ends each watch after this (a new one follows)
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    contact: float | None = None  # monotonic time of the last answer from the server
    failures: int = 0  # consecutive failed calls
    relist_after_error: float = 2.0  # seconds before listing again after a handler failed

    def stale_for(self) -> float:
        """Seconds since the server last said anything (inf before the first list)."""
        return float("inf") if self.contact is None else time.monotonic() - self.contact

    def _touch(self) -> None:
        self.contact = time.monotonic()
        self.failures = 0

    async def _pause(self, exc: KubeError) -> None:
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** min(self.failures, 10))
        self.failures += 1
        delay = max(exc.retry_after or 0.0, random.uniform(ceiling / 2, ceiling))
        logger.warning(
            "watch of %s failed; again in %.1f s",
            self.resource.plural,
            delay,
            extra={"status": exc.status, "error": exc.message[:200]},
        )
        await asyncio.sleep(delay)

    async def run(self) -> None:
        while True:
            try:
                version = await self._list()
            except KubeError as exc:
                await self._pause(exc)
                continue
            try:
                await self._watch(version)
            except Gone:
                logger.info("watch of %s expired; listing again", self.resource.plural)
            except _HandlerFailed:
                await asyncio.sleep(self.relist_after_error)

    async def _list(self) -> str:
        listing = await self.kube.list(self.resource, self.namespace, self.label_selector)
        self._touch()
        try:
            await self.on_list(list(listing.get("items") or []))
        except KubeError:
            raise  # a call the handler made failed: the pause and the retry apply
        except Exception:
            logger.exception("handling the list of %s failed", self.resource.plural)
        self.synced.set()
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(self, version: str) -> None:
        """Watch from ``version`` until 410 Gone; every other failure resumes from the last."""
        while True:
            began, events = time.monotonic(), 0
            try:
                async for kind, obj in self.kube.watch(
                    self.resource,
                    self.namespace,
                    resource_version=version,
                    label_selector=self.label_selector,
                    timeout_seconds=self.watch_seconds,
                ):
                    self._touch()
                    events += 1
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind != "BOOKMARK":
                        await self._handle(kind, obj)
                self._touch()  # the server ended this watch as asked: the next one follows
                if not events and time.monotonic() - began < 1.0:
                    await asyncio.sleep(1.0)  # a server that ends watches at once: no spin
            except (Gone, _HandlerFailed):
                raise
            except KubeError as exc:
                await self._pause(exc)

    async def _handle(self, kind: str, obj: Obj) -> None:
        try:
            await self.on_event(kind, obj)
        except Exception as exc:
            name = (obj.get("metadata") or {}).get("name")
            logger.exception("handling a %s event failed", kind, extra={"object": name})
            raise _HandlerFailed from exc


class _HandlerFailed(Exception):
    """An event handler raised: list again (after a pause) so that it is retried."""
