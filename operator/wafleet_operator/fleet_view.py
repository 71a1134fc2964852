"""The fleet as the move planners see it, from the operator's indexes: loads, replicas,
the policy in effect and the dead shards; and as its metrics show it (no kopf, no writes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wafleet.core.models import parse_iso
from wafleet.kube.account_cr import shard_lease_name
from wafleet_operator.actions import Indexes, OperatorState, policy_now, statefulset, values
from wafleet_operator.fleet_status import lease_view
from wafleet_operator.metrics import FleetGauges
from wafleet_operator.move_planner import FleetView, draining


def now() -> datetime:
    return datetime.now(UTC)


def dead_shards(state: OperatorState, indexes: Indexes, after: float) -> frozenset[int]:
    """Shards whose Lease expired more than ``after`` seconds ago (a shard with no Lease
    yet is starting, not dead)."""
    own = state.config.connector_statefulset
    occupied = {a.shard for a in values(indexes.accounts) if a.shard is not None}
    dead = set()
    for ordinal in occupied:
        lease = next(iter(indexes.leases.get(shard_lease_name(own, ordinal), [])), None)
        if lease is None:
            continue
        renewed = parse_iso(lease.get("renewTime"))
        duration = lease.get("leaseDurationSeconds")
        if renewed is None or not isinstance(duration, int):
            continue
        expired_at = renewed + timedelta(seconds=duration)
        if (now() - expired_at).total_seconds() > after:
            dead.add(ordinal)
    return frozenset(dead)


def view_of(state: OperatorState, indexes: Indexes) -> FleetView:
    resolved = policy_now(state, indexes)
    mobility = resolved.mobility
    sts = statefulset(state, indexes.statefulsets)
    replicas = 0 if sts is None else int(sts["replicas"])
    if state.scaled_to is not None:
        replicas = state.scaled_to
    dead = dead_shards(state, indexes, mobility.failover_after) if mobility.failover else None
    return FleetView(
        accounts=list(values(indexes.accounts)),
        replicas=replicas,
        policy=resolved.policy,
        mobility=mobility,
        dead=dead or frozenset(),
    )


def excluded(state: OperatorState, indexes: Indexes) -> frozenset[int]:
    """Shards that take no new account: draining ones, and dead ones (with failover)."""
    view = view_of(state, indexes)
    return draining(view) | view.dead


def gauges(state: OperatorState, indexes: Indexes) -> FleetGauges:
    """The fleet's gauges (metrics.py): the queue, the moves, each shard's accounts and
    whether its Lease expired under a holder, for every running or occupied shard."""
    accounts = list(values(indexes.accounts))
    live = [a for a in accounts if not a.deleting]
    loads: dict[int, int] = {}
    for shard in state.fleet.placements(accounts).values():
        loads[shard] = loads.get(shard, 0) + 1
    sts = statefulset(state, indexes.statefulsets)
    replicas = None if sts is None else int(sts["replicas"])
    own = state.config.connector_statefulset
    stamp = now()
    expired = {}
    for ordinal in range(max([replicas or 0, *(shard + 1 for shard in loads)])):
        lease = next(iter(indexes.leases.get(shard_lease_name(own, ordinal), [])), None)
        view = lease_view(lease, stamp)
        expired[ordinal] = view.holder is not None and not view.current
    return FleetGauges(
        waiting=sum(1 for a in live if a.shard is None),
        moving=sum(1 for a in live if a.moving),
        replicas=replicas,
        shard_accounts={ordinal: loads.get(ordinal, 0) for ordinal in expired},
        lease_expired=expired,
    )
