"""In-memory object storage: one global resourceVersion counter, a bounded event
history per resource (like the API server's watch cache, whose default upper
bound per resource is 100 * 1024 events) for resumable watches and lists at an
exact resourceVersion, and the watchers fed from it.

Once a resource's history has dropped events, a watch from a resourceVersion
older than the oldest kept event minus one gets 410 Expired ``too old resource
version: X (Y)`` (Y is that oldest event's resourceVersion minus one), as
watch_cache.go answers; a list pinned to such a resourceVersion gets etcd's
``The resourceVersion for the provided list is too old.``

Everything runs on the server's single event loop, so operations are atomic
without locks; watchers get their events through asyncio queues.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from k8s_emulator.errors import gone
from k8s_emulator.resources import Registry

JSON = dict[str, Any]
Key = tuple[str, str]  # (storage group, plural)


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: JSON
    prev: JSON | None


class Sink(Protocol):
    key: Key

    def offer(self, event: Event) -> None: ...

    def close(self) -> None: ...


DEFAULT_HISTORY = 100 * 1024


class Store:
    def __init__(self, history_size: int = DEFAULT_HISTORY) -> None:
        self.registry = Registry()
        self.rv = 0
        self.history_size = history_size
        self._history: dict[Key, deque[Event]] = {}
        self._evicted: dict[Key, int] = {}
        self._objects: dict[Key, dict[tuple[str, str], JSON]] = {}
        self._sinks: set[Sink] = set()
        self.closed = False

    # -- reads ----------------------------------------------------------------

    def get(self, key: Key, namespace: str, name: str) -> JSON | None:
        found = self._objects.get(key, {}).get((namespace, name))
        return None if found is None else copy.deepcopy(found)

    def items(self, key: Key, namespace: str | None) -> list[JSON]:
        found = self._objects.get(key, {})
        return [
            copy.deepcopy(found[k]) for k in sorted(found) if namespace is None or k[0] == namespace
        ]

    def resource_keys(self) -> list[Key]:
        return list(self._objects)

    def namespace_is_empty(self, namespace: str) -> bool:
        return not any(ns == namespace for objs in self._objects.values() for ns, _ in objs)

    # -- writes ---------------------------------------------------------------

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def put(self, key: Key, obj: JSON, prev: JSON | None) -> JSON:
        """Store ``obj`` (ADDED when ``prev`` is None, else MODIFIED) with a new resourceVersion."""
        rv = self.next_rv()
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(rv)
        meta = stored["metadata"]
        self._objects.setdefault(key, {})[(meta.get("namespace", ""), meta["name"])] = stored
        self._emit(Event(rv, "ADDED" if prev is None else "MODIFIED", key, stored, prev))
        return copy.deepcopy(stored)

    def remove(self, key: Key, obj: JSON) -> JSON:
        """Delete ``obj``; the DELETED event carries its last state with a new resourceVersion."""
        meta = obj["metadata"]
        self._objects.get(key, {}).pop((meta.get("namespace", ""), meta["name"]), None)
        rv = self.next_rv()
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = str(rv)
        self._emit(Event(rv, "DELETED", key, final, copy.deepcopy(obj)))
        return obj

    def _emit(self, event: Event) -> None:
        history = self._history.setdefault(event.key, deque(maxlen=max(self.history_size, 1)))
        if len(history) == history.maxlen:
            self._evicted[event.key] = history[0].rv
        history.append(event)
        for sink in list(self._sinks):
            if sink.key == event.key:
                sink.offer(event)

    # -- watches --------------------------------------------------------------

    def oldest_resumable(self, key: Key) -> int:
        """The oldest resourceVersion a watch of ``key`` can resume from (0: any)."""
        history = self._history.get(key)
        if key not in self._evicted or not history:
            return 0
        return history[0].rv - 1

    def items_at(self, key: Key, namespace: str | None, rv: int) -> list[JSON] | None:
        """The objects as they were at ``rv``, or None once the history no longer covers it."""
        if rv < self.oldest_resumable(key):
            return None
        state = {
            (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
            for o in self.items(key, None)
        }
        for event in reversed(self._history.get(key, ())):
            if event.rv <= rv:
                break
            meta = event.obj["metadata"]
            where = (meta.get("namespace", ""), meta["name"])
            if event.type == "ADDED":
                state.pop(where, None)
            elif event.prev is not None:
                state[where] = copy.deepcopy(event.prev)
        return [state[k] for k in sorted(state) if namespace is None or k[0] == namespace]

    def subscribe(self, sink: Sink, since: int | None) -> None:
        """Register ``sink``; first replay the history after ``since`` (410 if it is gone)."""
        if since is not None and since < self.rv:
            oldest = self.oldest_resumable(sink.key)
            if since < oldest:
                raise gone(f"too old resource version: {since} ({oldest})")
            for event in self._history.get(sink.key, ()):
                if event.rv > since:
                    sink.offer(event)
        self._sinks.add(sink)

    def unsubscribe(self, sink: Sink) -> None:
        self._sinks.discard(sink)

    def close(self) -> None:
        """End every watch cleanly (server shutdown)."""
        self.closed = True
        for sink in list(self._sinks):
            sink.close()
        self._sinks.clear()
