"""The operator's readiness: ``GET /readyz`` on its own port, beside kopf's ``/healthz``.

kopf's liveness endpoint (``--liveness``, /healthz) answers once kopf's startup handlers
have run, for as long as the process and its event loop are alive; it says nothing of
whether this operator acts. A failing ``@kopf.on.probe`` handler would make /healthz fail,
which restarts the pod: right for a hung process, wrong for one that only waits. So
readiness is a separate endpoint, served by ``wafleet operator``. It is ready when:

1. kopf's startup handlers finished (``configure``: settings, API client, KopfPeering):
   kopf sets the ``ready_flag`` it was given;
2. kopf calls the handlers: the ``peering-heartbeat`` event handler (handlers.py) on the
   operator's own KopfPeering object was called within ``stale_after`` seconds. kopf calls
   no handler but the indexing ones before every index (accounts, statefulsets, leases) is
   filled from its first listing, and it stops watching altogether while peering pauses
   it, so a call proves both. kopf's keep-alive rewrites that object every ~50 s
   (``settings.peering.lifetime`` 60 s), so an active operator hears of it that often;
3. the last KopfPeering seen lists no other live peer of a priority at or above ours (kopf
   pauses all the operators of the same priority; it stops the watch that would tell us
   right after, so this is taken from the last body seen).

The answer is JSON ``{"ready": bool, "reason": str}``, status 200 or 503.

The same port serves ``/metrics`` (metrics.py: placements, moves, the queue, the shards),
with no credential, as kube components' metrics ports do: it is reached inside the
cluster only, and the metrics name no phone number and no secret.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from aiohttp import web

from wafleet.core.metrics import Metrics
from wafleet_operator.metrics import METRICS

logger = logging.getLogger(__name__)

DEFAULT_STALE_AFTER = 120.0  # seconds: twice kopf's default peering lifetime


def own_identity() -> str:
    """This operator's peering identity, as kopf reads it (``POD_ID``, which the chart
    sets to the pod name); one is made and exported when it is not set, so that kopf and
    the readiness check agree on it."""
    identity = os.environ.get("POD_ID")
    if not identity:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        identity = f"{socket.gethostname()}/{stamp}/{secrets.token_hex(2)}"
        os.environ["POD_ID"] = identity
    return identity


@dataclass(frozen=True)
class Status:
    ready: bool
    reason: str


@dataclass
class Readiness:
    """What /readyz answers from; the heartbeat handler and kopf's ready_flag feed it."""

    identity: str | None = None  # None: conflicts are not looked at (`kopf run` of the tests)
    priority: int = 0
    stale_after: float = DEFAULT_STALE_AFTER
    started: asyncio.Event | None = None  # kopf's ready_flag; None: not run by `operate`
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    heard_at: float | None = None
    conflicts: tuple[str, ...] = ()
    deleted: bool = False

    def heard(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An event of our KopfPeering object reached a handler."""
        self.heard_at = self.clock()
        self.deleted = event_type == "DELETED"
        self.conflicts = self._conflicts(body.get("status") or {})

    def _conflicts(self, peers: Mapping[str, Any]) -> tuple[str, ...]:
        if self.identity is None:
            return ()
        now = self.wall_clock()
        found = []
        for identity, info in peers.items():
            if identity == self.identity or not isinstance(info, Mapping):
                continue
            try:
                priority = int(info.get("priority", 0))
                lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
                lastseen = datetime.fromisoformat(str(info["lastseen"]))
            except (KeyError, TypeError, ValueError):
                continue
            if lastseen.tzinfo is None:
                lastseen = lastseen.replace(tzinfo=UTC)
            if priority >= self.priority and lastseen + lifetime > now:
                found.append(identity)
        return tuple(sorted(found))

    def status(self) -> Status:
        if self.started is not None and not self.started.is_set():
            return Status(False, "kopf's startup handlers have not finished")
        if self.heard_at is None:
            return Status(
                False,
                "kopf has not called the handlers yet: its indexes are being filled, "
                "or peering pauses it",
            )
        if self.deleted:
            return Status(False, "the KopfPeering object was deleted")
        if self.conflicts:
            return Status(
                False,
                "paused by kopf's peering: other live operators " + ", ".join(self.conflicts),
            )
        silent = self.clock() - self.heard_at
        if silent > self.stale_after:
            return Status(
                False,
                f"kopf has called no handler for {silent:.0f} s (over {self.stale_after:.0f} s): "
                "paused, or its watches are stuck",
            )
        return Status(True, "active: indexes filled, handlers called, no competing peer")


READINESS = Readiness()


def readiness_app(readiness: Readiness, metrics: Metrics | None = None) -> web.Application:
    async def readyz(request: web.Request) -> web.Response:
        status = readiness.status()
        return web.json_response(
            {"ready": status.ready, "reason": status.reason}, status=200 if status.ready else 503
        )

    async def scrape(request: web.Request) -> web.Response:
        assert metrics is not None
        body, content_type = await metrics.render(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.add_routes([web.get("/readyz", readyz)])
    if metrics is not None:
        app.add_routes([web.get("/metrics", scrape)])
    return app


async def serve(
    readiness: Readiness, host: str, port: int, metrics: Metrics | None = None
) -> web.AppRunner:
    """Start answering /readyz (and /metrics) on host:port; ``await runner.cleanup()``
    stops it."""
    app = readiness_app(readiness, metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("readiness on http://%s:%d/readyz", host, port)
    return runner


async def operate(
    namespace: str,
    liveness_port: int,
    readiness_port: int,
    host: str = "0.0.0.0",  # noqa: S104
) -> None:
    """kopf's operator with its liveness endpoint, and /readyz beside it (the handlers
    must be imported: they register with kopf on import)."""
    READINESS.identity = own_identity()
    READINESS.started = asyncio.Event()
    runner = await serve(READINESS, host, readiness_port, METRICS)
    try:
        await kopf.operator(
            namespaces=[namespace],
            standalone=False,
            liveness_endpoint=f"http://{host}:{liveness_port}/healthz",
            ready_flag=READINESS.started,
        )
    finally:
        await runner.cleanup()
