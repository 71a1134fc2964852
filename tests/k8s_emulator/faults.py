"""Fault injection: errors, latency and broken watches, scoped and counted.

A ``Fault`` has a kind (``status`` with code 429/500/503, ``latency``,
``drop-watch``, ``half-open-watch``), a scope (resource plural, optionally
group, verbs, name, namespace), an activation (a probability ``rate`` drawn
from its own ``seed``ed generator; a window: ``for_seconds`` from now and/or
the next ``count`` matching requests) and counters (``matched``: requests in
scope while active; ``hits``: requests it acted on). Faults are evaluated in
the order they were added: every firing latency adds up, the first firing
status fault answers (later ones are not consulted), and for a watch the first
firing watch fault shapes the stream. Only resource requests are faulted
(never discovery, health or ``/_emulator``).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

from k8s_emulator.errors import status_body

JSON = dict[str, Any]
KINDS = ("status", "latency", "drop-watch", "half-open-watch")
CODES = (429, 500, 503)
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
TOO_MANY = "Too many requests, please try again later."
_ids = itertools.count(1)


class FaultSpecError(ValueError):
    """A fault description the emulator cannot use (400 on the control endpoint)."""


@dataclass(frozen=True)
class RequestInfo:
    verb: str
    group: str
    resource: str
    namespace: str
    name: str


@dataclass
class Fault:
    kind: str
    code: int = 0  # status: 429, 500 or 503
    retry_after: int | None = None  # seconds (Retry-After); 429 defaults to 1
    plain: bool = False  # 503 as text/plain instead of a Status
    message: str = ""
    seconds: float = 0.0  # latency
    after_events: int | None = None  # watch faults: after this many events sent
    after_seconds: float | None = None  # watch faults: after this long
    reset: bool = True  # drop-watch: cut the connection (False: end the stream cleanly)
    resource: str = ""  # plural; "" is every resource
    group: str | None = None  # None: any group ("" is the core group)
    verbs: tuple[str, ...] = ()
    name: str = ""
    namespace: str = ""
    rate: float = 1.0
    seed: int | None = None
    for_seconds: float | None = None
    count: int | None = None
    id: str = field(default_factory=lambda: f"fault-{next(_ids)}")
    hits: int = 0
    matched: int = 0
    started: float = field(default_factory=time.monotonic)
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.verbs = tuple(self.verbs)
        self.check()

    def check(self) -> None:
        if self.kind not in KINDS:
            raise FaultSpecError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "status" and self.code not in CODES:
            raise FaultSpecError(f"a status fault's code must be one of {CODES}, not {self.code}")
        if self.kind == "latency" and self.seconds <= 0:
            raise FaultSpecError("a latency fault needs seconds > 0")
        unknown = [v for v in self.verbs if v not in VERBS]
        if unknown:
            raise FaultSpecError(f"unknown verbs {unknown}; verbs are {', '.join(VERBS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise FaultSpecError("rate is a probability between 0 and 1")
        if self.kind in ("drop-watch", "half-open-watch") and self.verbs not in ((), ("watch",)):
            raise FaultSpecError("watch faults apply to the watch verb only")

    # -- activation -------------------------------------------------------------

    @property
    def remaining(self) -> int | None:
        return None if self.count is None else max(self.count - self.matched, 0)

    def active(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.for_seconds is not None and now >= self.started + self.for_seconds:
            return False
        return self.remaining != 0

    def in_scope(self, info: RequestInfo) -> bool:
        if self.kind in ("drop-watch", "half-open-watch") and info.verb != "watch":
            return False
        return (
            (not self.resource or self.resource == info.resource)
            and (self.group is None or self.group == info.group)
            and (not self.verbs or info.verb in self.verbs)
            and (not self.name or self.name == info.name)
            and (not self.namespace or self.namespace == info.namespace)
        )

    def fire(self, info: RequestInfo) -> bool:
        """Count a request in scope; True when the fault acts on it."""
        if not self.in_scope(info) or not self.active():
            return False
        self.matched += 1
        if self.rate < 1.0 and self._random.random() >= self.rate:
            return False
        self.hits += 1
        return True

    # -- effects ----------------------------------------------------------------

    def response(self) -> Response:
        if self.code == 429:
            return _plain(429, TOO_MANY, self.retry_after or 1)
        if self.code == 503:
            message = self.message or "service unavailable"
            if self.plain:
                return _plain(503, message, self.retry_after)
            return _status(status_body(503, "ServiceUnavailable", message), self.retry_after)
        message = self.message or "injected fault"
        body = status_body(
            500,
            "InternalError",
            f"Internal error occurred: {message}",
            {"causes": [{"message": message}]},
        )
        return _status(body, self.retry_after)

    def as_json(self) -> JSON:
        out: JSON = {
            "id": self.id,
            "kind": self.kind,
            "resource": self.resource,
            "group": self.group,
            "verbs": list(self.verbs),
            "name": self.name,
            "namespace": self.namespace,
            "rate": self.rate,
            "seed": self.seed,
            "forSeconds": self.for_seconds,
            "count": self.count,
            "hits": self.hits,
            "matched": self.matched,
            "remaining": self.remaining,
            "active": self.active(),
        }
        for key, value in (
            ("code", self.code),
            ("retryAfter", self.retry_after),
            ("plain", self.plain),
            ("message", self.message),
            ("seconds", self.seconds),
            ("afterEvents", self.after_events),
            ("afterSeconds", self.after_seconds),
            ("reset", self.reset),
        ):
            if value not in (None, "", 0, False) or (key == "reset" and self.kind == "drop-watch"):
                out[key] = value
        return out


def _plain(code: int, message: str, retry_after: int | None) -> Response:
    """net/http's http.Error, as the API server's priority-and-fairness filter answers."""
    response = Response(message + "\n", status_code=code)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _status(body: JSON, retry_after: int | None) -> Response:
    response = Response(
        json.dumps(body, separators=(",", ":")),
        status_code=body["code"],
        media_type="application/json",
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


_JSON_FIELDS = {
    "kind": "kind",
    "code": "code",
    "retryAfter": "retry_after",
    "plain": "plain",
    "message": "message",
    "seconds": "seconds",
    "afterEvents": "after_events",
    "afterSeconds": "after_seconds",
    "reset": "reset",
    "resource": "resource",
    "group": "group",
    "verbs": "verbs",
    "name": "name",
    "namespace": "namespace",
    "rate": "rate",
    "seed": "seed",
    "forSeconds": "for_seconds",
    "count": "count",
}


def fault_from_json(spec: Any) -> Fault:
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault is a JSON object")
    unknown = sorted(set(spec) - set(_JSON_FIELDS))
    if unknown:
        raise FaultSpecError(f"unknown fault fields {unknown}; known: {', '.join(_JSON_FIELDS)}")
    try:
        return Fault(**{_JSON_FIELDS[k]: v for k, v in spec.items()})
    except TypeError as error:
        raise FaultSpecError(str(error)) from error


@dataclass
class Decision:
    latency: float = 0.0
    answer: Fault | None = None
    watch: Fault | None = None


class FaultSet:
    """The faults in force; safe to use from a test thread while the server runs."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault | None = None, **spec: Any) -> Fault:
        """Add ``fault``, or one made from keyword arguments (``Fault``'s fields)."""
        made = fault if fault is not None else Fault(**spec)
        with self._lock:
            self._faults.append(made)
        return made

    def remove(self, fault_id: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.id == fault_id:
                    self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> list[Fault]:
        with self._lock:
            removed, self._faults = self._faults, []
        return removed

    def get(self, fault_id: str) -> Fault | None:
        return next((f for f in self.list() if f.id == fault_id), None)

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def decide(self, info: RequestInfo) -> Decision:
        decision = Decision()
        with self._lock:
            for fault in self._faults:
                if fault.kind != "latency" and decision.answer is not None:
                    continue
                if fault.kind.endswith("-watch") and decision.watch is not None:
                    continue
                if not fault.fire(info):
                    continue
                if fault.kind == "latency":
                    decision.latency += fault.seconds
                elif fault.kind == "status":
                    decision.answer = fault
                else:
                    decision.watch = fault
        return decision
