"""Watch streams: newline-delimited JSON events over a chunked response.

Selector transitions follow the API server's watch cache: an object that starts
matching a watcher's selectors arrives as ADDED, one that stops matching as
DELETED (its previous content, with the new resourceVersion).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from k8s_emulator.conversion import present
from k8s_emulator.faults import Fault
from k8s_emulator.resources import ResourceType
from k8s_emulator.selectors import Matcher
from k8s_emulator.store import Event, Key, Store

JSON = dict[str, Any]
Render = Callable[[JSON], JSON]
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def encode(kind: str, obj: JSON) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


class Watcher:
    def __init__(
        self, rtype: ResourceType, namespace: str | None, match: Matcher, render: Render
    ) -> None:
        self.rtype = rtype
        self.key: Key = rtype.key
        self.namespace = namespace
        self.match = match
        self.render = render
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def passes(self, obj: JSON) -> bool:
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.match(present(self.rtype, obj))

    def offer(self, event: Event) -> None:
        now = event.type != "DELETED" and self.passes(event.obj)
        before = event.prev is not None and self.passes(event.prev)
        if now and not before:
            self.send("ADDED", event.obj)
        elif now and before:
            self.send("MODIFIED", event.obj)
        elif before and event.prev is not None:
            gone = copy.deepcopy(event.prev)
            gone["metadata"]["resourceVersion"] = str(event.rv)
            self.send("DELETED", gone)

    def send(self, kind: str, stored: JSON) -> None:
        self.queue.put_nowait(encode(kind, self.render(present(self.rtype, stored))))

    def close(self) -> None:
        self.queue.put_nowait(None)


def bookmark(rtype: ResourceType, resource_version: int, initial_end: bool = False) -> bytes:
    meta: JSON = {"resourceVersion": str(resource_version)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return encode(
        "BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}
    )


PRE_TIMEOUT_BOOKMARK = 2.0  # cacher: a bookmark 2 s before the watch's deadline


class DroppedWatch(Exception):
    """Raised inside a watch stream to cut its connection (a drop-watch fault)."""


@dataclass
class Plan:
    timeout: float
    bookmarks: bool
    bookmark_interval: float
    fault: Fault | None = None


def next_bookmark(now: float, interval: float, deadline: float) -> float | None:
    """cacheWatcher.nextBookmarkTime: every interval, and last 2 s before the deadline."""
    heartbeat = min(now + interval, deadline - PRE_TIMEOUT_BOOKMARK)
    return None if heartbeat <= now else heartbeat


def _fault_time(plan: Plan, start: float) -> float | None:
    fault = plan.fault
    if fault is None or fault.after_seconds is None:
        return None
    return start + fault.after_seconds


def _fault_due(plan: Plan, sent: int, now: float, at: float | None) -> bool:
    fault = plan.fault
    if fault is None:
        return False
    if fault.after_events is None and fault.after_seconds is None:
        return True
    if fault.after_events is not None and sent >= fault.after_events:
        return True
    return at is not None and now >= at


async def _silence(watcher: Watcher) -> None:
    """A half-open watch: nothing more is sent, not even bookmarks, whatever happens."""
    while await watcher.queue.get() is not None:
        pass


async def stream(store: Store, watcher: Watcher, plan: Plan) -> AsyncIterator[bytes]:
    """Yield the watcher's events until the timeout, the server's shutdown, a disconnect or
    the watch fault in force (a cut connection, a clean early end, or silence)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + plan.timeout
    bookmark_at = next_bookmark(start, plan.bookmark_interval, deadline) if plan.bookmarks else None
    fault_at = _fault_time(plan, start)
    sent = 0
    try:
        while True:
            now = loop.time()
            if _fault_due(plan, sent, now, fault_at):
                assert plan.fault is not None
                if plan.fault.kind == "half-open-watch":
                    await _silence(watcher)
                    return
                if plan.fault.reset:
                    raise DroppedWatch(plan.fault.id)
                return
            if now >= deadline:
                return
            wake = min(t for t in (deadline, bookmark_at, fault_at) if t is not None)
            try:
                line = await asyncio.wait_for(watcher.queue.get(), max(wake - now, 0))
            except TimeoutError:
                now = loop.time()
                if bookmark_at is not None and now >= bookmark_at and now < deadline:
                    yield bookmark(watcher.rtype, store.rv)
                    sent += 1
                    bookmark_at = next_bookmark(now, plan.bookmark_interval, deadline)
                continue
            if line is None:
                return
            yield line
            sent += 1
    finally:
        store.unsubscribe(watcher)
