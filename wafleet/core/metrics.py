"""What every component's ``/metrics`` is built on (prometheus_client).

**A registry per process part, never the module-level default.** Tests build many apps,
managers and dispatchers in one process; module-level metrics would be shared by all of
them (and a second registration of a name raises). So each component keeps its own
counters (plain ints on its own objects, or unregistered ``Histogram`` objects) and one
:class:`~prometheus_client.registry.Collector` that turns them, with what it reads from
live state at scrape time (sessions, lanes, placements), into metric families. The entry
point of a process (the connector pod, the operator, the API, standalone mode) adds the
collectors of what it runs to one :class:`Metrics`, which its ``/metrics`` serves. A
deleted account or webhook leaves no stale series: its state is gone, so is its series.

A collector that needs I/O before a scrape (an outbox count from the store) also has an
``async refresh()``; :meth:`Metrics.render` awaits every refresh, each bounded in time,
before it collects (collecting itself is synchronous, in the event loop's thread, so it
reads the same objects the loop changes without locks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REFRESH_TIMEOUT = 5.0  # seconds a collector's refresh may take before a scrape goes on


@runtime_checkable
class Refreshing(Protocol):
    """A collector that reads something over I/O before each scrape."""

    def collect(self) -> Iterable[Metric]: ...

    async def refresh(self) -> None: ...


class Metrics:
    """One process's registry: its components' collectors, and the process's own
    (``process_*``, ``python_*``) unless ``process`` is False."""

    def __init__(self, *, process: bool = True) -> None:
        # auto_describe: a collector's names are read (collected) as it is added, so a
        # name added twice is refused then, never served twice.
        self.registry = CollectorRegistry(auto_describe=True)
        self._refreshes: list[Callable[[], Awaitable[None]]] = []
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def add(self, collector: Collector) -> None:
        self.registry.register(collector)
        if isinstance(collector, Refreshing):
            self._refreshes.append(collector.refresh)

    async def refresh(self) -> None:
        """Let every collector read what it needs; a slow or failing one is logged and
        collects what it had (the scrape never fails for it)."""
        if not self._refreshes:
            return
        results = await asyncio.gather(
            *(asyncio.wait_for(refresh(), REFRESH_TIMEOUT) for refresh in self._refreshes),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("a metrics refresh failed", extra={"error": repr(result)[:200]})

    async def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition for an ``Accept`` header: the body and its content type."""
        await self.refresh()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    def sample(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """One sample's value as the registry has it now (for tests and the docs' checks)."""
        return self.registry.get_sample_value(name, dict(labels or {}))


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def counter(name: str, documentation: str, labels: Iterable[str] = ()) -> CounterMetricFamily:
    """A counter family; ``name`` without ``_total`` (the exposition adds it)."""
    return CounterMetricFamily(name, documentation, labels=list(labels))
