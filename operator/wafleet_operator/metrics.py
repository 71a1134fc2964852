"""The operator's metrics: placements, moves by result, the queue, the shards it sees.

kopf's handlers are module-level and one operator runs per process, so the process's
metrics are module-level too (``METRICS``, served beside /readyz by readiness.py): the
``OperatorState`` that ``configure`` connects counts into ``COLLECTOR.counts``, and binds
``COLLECTOR.fleet`` to its kopf indexes. An ``OperatorState`` made elsewhere (the unit
tests) has counts of its own, registered nowhere. The fleet gauges are read from the
indexes at scrape time, and only while the operator is ready (its indexes filled, not
paused by peering): a standby's empty indexes would report an empty fleet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.metrics_core import Metric

from wafleet.core.metrics import Metrics, counter, gauge

MoveResult = Literal["moved", "cancelled", "refused"]
MOVE_RESULTS: tuple[MoveResult, ...] = ("moved", "cancelled", "refused")
MOVE_REASONS = ("requested", "drain", "consolidate", "rebalance", "failover")


def move_reason(reason: str | None) -> str:
    """A move's reason as a label: a planner's, else "requested" (a person's annotation
    may say anything)."""
    return reason if reason in MOVE_REASONS else "requested"


@dataclass
class OperatorCounts:
    """What the handlers count."""

    placements: int = 0  # accounts assigned a shard
    moves: Counter[str] = field(default_factory=Counter)  # by MoveResult
    moves_started: Counter[str] = field(default_factory=Counter)  # by move_reason()

    def moved(self, result: MoveResult) -> None:
        self.moves[result] += 1


@dataclass(frozen=True)
class FleetGauges:
    """The fleet as the indexes show it now (fleet_view.gauges)."""

    waiting: int  # accounts with no shard (capacity, duplicate phone): the queue
    moving: int  # accounts with a move asked for or open
    replicas: int | None  # the connector StatefulSet's, None if it is not found
    shard_accounts: Mapping[int, int]  # ordinal -> accounts placed there
    lease_expired: Mapping[int, bool]  # ordinal -> its Lease has a holder that stopped


class OperatorCollector:
    def __init__(self, counts: OperatorCounts | None = None) -> None:
        self.counts = counts or OperatorCounts()
        self.fleet: Callable[[], FleetGauges | None] = lambda: None
        self.ready: Callable[[], bool] = lambda: False

    def collect(self) -> Iterable[Metric]:
        ready = gauge(
            "wafleet_operator_ready",
            "1 while the operator acts: kopf started, indexes filled, not paused by peering.",
        )
        ready.add_metric([], 1 if self.ready() else 0)
        placements = counter(
            "wafleet_operator_placements", "Accounts the operator assigned a shard."
        )
        placements.add_metric([], self.counts.placements)
        moves = counter(
            "wafleet_operator_moves",
            "Moves between shards that ended, by result: moved (the target runs the "
            "account), cancelled, refused (the move-to asked for could not be opened).",
            ["result"],
        )
        for result in MOVE_RESULTS:
            moves.add_metric([result], self.counts.moves[result])
        started = counter(
            "wafleet_operator_moves_started",
            "Moves opened, by reason: requested (a person's move-to), drain, consolidate, "
            "rebalance, failover.",
            ["reason"],
        )
        for reason in MOVE_REASONS:
            started.add_metric([reason], self.counts.moves_started[reason])
        families: list[Metric] = [ready, placements, moves, started]
        fleet = self.fleet()
        if fleet is not None:
            families += _fleet_families(fleet)
        return families


def _fleet_families(fleet: FleetGauges) -> list[Metric]:
    waiting = gauge(
        "wafleet_operator_accounts_waiting",
        "Accounts waiting for a shard (no capacity, or a duplicate phone).",
    )
    waiting.add_metric([], fleet.waiting)
    moving = gauge("wafleet_operator_moves_in_progress", "Accounts with a move asked for or open.")
    moving.add_metric([], fleet.moving)
    families: list[Metric] = [waiting, moving]
    if fleet.replicas is not None:
        replicas = gauge(
            "wafleet_operator_connector_replicas", "Replicas of the connector StatefulSet."
        )
        replicas.add_metric([], fleet.replicas)
        families.append(replicas)
    accounts = gauge("wafleet_operator_shard_accounts", "Accounts placed on the shard.", ["shard"])
    for ordinal, count in sorted(fleet.shard_accounts.items()):
        accounts.add_metric([str(ordinal)], count)
    expired = gauge(
        "wafleet_operator_shard_lease_expired",
        "1 when the shard's Lease has a holder that stopped renewing it (its pod died or "
        "cannot reach the API server); 0 while it is renewed, released or not yet taken.",
        ["shard"],
    )
    for ordinal, lost in sorted(fleet.lease_expired.items()):
        expired.add_metric([str(ordinal)], 1 if lost else 0)
    return [*families, accounts, expired]


COLLECTOR = OperatorCollector()
METRICS = Metrics()
METRICS.add(COLLECTOR)
