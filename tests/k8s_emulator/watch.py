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
from typing import Any

from k8s_emulator.conversion import present
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


async def stream(
    store: Store,
    watcher: Watcher,
    timeout: float,
    bookmarks: bool,
    bookmark_interval: float,
) -> AsyncIterator[bytes]:
    """Yield the watcher's events until the timeout, the server's shutdown or a disconnect."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            wait = min(remaining, bookmark_interval) if bookmarks else remaining
            try:
                line = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    yield bookmark(watcher.rtype, store.rv)
                continue
            if line is None:
                return
            yield line
    finally:
        store.unsubscribe(watcher)
