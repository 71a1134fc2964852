"""The API's metrics: its request latency, and the accounts by phase it reads from memory.

One :class:`ApiMetrics` per app, kept in ``app.state`` and made on first use by
:func:`api_metrics` (see :mod:`wafleet.core.metrics` for why not module-level metrics):
the request middleware (request_metrics.py) and ``GET /metrics`` (routes_system.py) find
it there, so ``create_app`` needs no change for it. Standalone mode adds the collectors
of its in-process connector and dispatcher (``include``), so its one ``/metrics`` shows
every component.

``wafleet_accounts{phase}`` and ``wafleet_account_reconnects_total`` keep the names and
labels of the series the API served before prometheus_client (dashboards may use them):
the whole fleet, from the backend's snapshot (in a cluster: every WhatsAppAccount's
status, as the API's watch sees it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette

from wafleet.core.metrics import Metrics, counter, gauge
from wafleet.core.phases import Phase
from wafleet_api.account_index import AccountSnapshot
from wafleet_api.backend import AccountBackend

# Seconds: most routes answer from memory in a millisecond; sends and store reads take
# tens of milliseconds; event streams last as long as their client (the top bucket).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class AccountsCollector:
    """The fleet's accounts by phase, and their reconnects, from the backend's snapshot."""

    def __init__(self, snapshot: Callable[[], AccountSnapshot | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snapshot = self._snapshot()
        if snapshot is None:
            return []
        accounts = snapshot.accounts
        phases = Counter(account.status.phase for account in accounts)
        by_phase = gauge("wafleet_accounts", "Accounts by phase.", ["phase"])
        for phase in Phase:
            by_phase.add_metric([phase.value], phases[phase])
        reconnects = counter("wafleet_account_reconnects", "Reconnects of all accounts.")
        reconnects.add_metric([], sum(account.status.reconnects for account in accounts))
        return [by_phase, reconnects]


class ApiMetrics:
    """One API app's registry: request latency, accounts, and whatever is ``include``d."""

    def __init__(self, snapshot: Callable[[], AccountSnapshot | None]) -> None:
        self.metrics = Metrics()
        self.requests = Histogram(
            "wafleet_api_request_duration_seconds",
            "Seconds the API took to answer, by route (its path template), method and "
            "status class (2xx, 4xx, ...).",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=None,
        )
        self.metrics.add(self.requests)
        self.metrics.add(AccountsCollector(snapshot))

    def include(self, collector: Collector) -> None:
        """Serve another component's collector from this app's /metrics too."""
        self.metrics.add(collector)

    async def render(self, accept: str | None) -> tuple[bytes, str]:
        return await self.metrics.render(accept)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request (labels bounded: a made-up method or status is "other")."""
        method = method if method in METHODS else "other"
        status_class = f"{status // 100}xx" if 100 <= status < 600 else "other"
        self.requests.labels(route, method, status_class).observe(seconds)


def api_metrics(app: Starlette) -> ApiMetrics:
    """The app's ApiMetrics, made on first use (in the event loop: no race)."""
    found: ApiMetrics | None = getattr(app.state, "api_metrics", None)
    if found is None:

        def snapshot() -> AccountSnapshot | None:
            backend: AccountBackend | None = getattr(app.state, "backend", None)
            return None if backend is None else backend.snapshot()

        found = app.state.api_metrics = ApiMetrics(snapshot)
    return found
