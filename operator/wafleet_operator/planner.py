"""Shard placement, as plain functions: capacity, sticky, least loaded, scale.

A shard is a connector StatefulSet ordinal. Placement is sticky: an assigned
account stays on its shard (moving a live WhatsApp session is an explicit
drain, not a side effect of scaling). A new account goes to the least-loaded
shard with room, the lowest ordinal on ties; when every running shard is
full, a new shard is opened, up to ``max_shards``. The StatefulSet runs enough
shards for the highest occupied ordinal, at least ``min_shards``; scaling
down only ever removes empty highest ordinals. The policy can change at runtime
(the WhatsAppFleet object): a lower ``sessions_per_shard`` or ``max_shards``
never stops an occupied shard nor moves anyone, it only stops new placements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ShardPolicy:
    sessions_per_shard: int = 25
    min_shards: int = 1
    max_shards: int = 20

    def __post_init__(self) -> None:
        if self.sessions_per_shard < 1:
            raise ValueError("sessionsPerShard must be at least 1")
        if not 0 <= self.min_shards <= self.max_shards:
            raise ValueError("need 0 <= minShards <= maxShards")

    @property
    def capacity(self) -> int:
        return self.sessions_per_shard * self.max_shards


@dataclass(frozen=True)
class MobilityPolicy:
    """How sessions move between shards (docs/design/mobility.md): a WhatsAppFleet's
    ``drain``, ``rebalance``, ``failover`` and ``moves`` over the operator's defaults."""

    drain: frozenset[int] = field(default_factory=frozenset)  # ordinals to empty
    rebalance: bool = False  # even out the shards when they differ by more than max_skew
    max_skew: int = 2
    consolidate: bool = True  # with rebalance: drain the highest shards the load fits without
    failover: bool = False  # move a dead shard's accounts once its Lease stayed expired
    failover_after: float = 120.0  # seconds its Lease may stay expired first
    concurrency: int = 5  # moves at a time, planned ones (a person's are never held back)
    move_timeout: float = 30.0  # seconds a source has to let a session go before fencing

    def __post_init__(self) -> None:
        if self.max_skew < 1:
            raise ValueError("rebalance.maxSkew must be at least 1")
        if self.concurrency < 1:
            raise ValueError("moves.concurrency must be at least 1")
        if self.failover_after <= 0 or self.move_timeout <= 0:
            raise ValueError("failover.after and moves.timeout must be above 0")


def shard_loads(placements: Iterable[int]) -> dict[int, int]:
    """How many accounts each shard holds, from the shards of all assigned accounts."""
    return dict(Counter(placements))


def choose_shard(
    loads: Mapping[int, int],
    replicas: int,
    policy: ShardPolicy,
    excluded: Iterable[int] = (),
) -> int | None:
    """The shard for a new account (or one that moves), or None when every allowed shard
    is full. ``excluded``: shards that take nobody (draining, dead, the move's source)."""
    skip = set(excluded)
    running = max(replicas, policy.min_shards, max(loads, default=-1) + 1)
    running = min(running, policy.max_shards)
    with_room = [
        (loads.get(ordinal, 0), ordinal)
        for ordinal in range(running)
        if loads.get(ordinal, 0) < policy.sessions_per_shard and ordinal not in skip
    ]
    if with_room:
        return min(with_room)[1]
    for ordinal in range(running, policy.max_shards):  # open the next shard that may take one
        if ordinal not in skip:
            return ordinal
    return None


def desired_replicas(loads: Mapping[int, int], policy: ShardPolicy) -> int:
    """Enough shards for the highest occupied ordinal, at least min_shards.

    Placements never go beyond max_shards, so this is at most max_shards, unless
    max_shards was lowered below an occupied shard: that shard keeps running (sticky).
    """
    highest = max((ordinal for ordinal, count in loads.items() if count > 0), default=-1)
    return max(policy.min_shards, highest + 1)


def room(loads: Mapping[int, int], policy: ShardPolicy) -> int:
    """How many more accounts the allowed shards can take (shards not yet running count)."""
    return sum(
        max(0, policy.sessions_per_shard - loads.get(ordinal, 0))
        for ordinal in range(policy.max_shards)
    )


def no_capacity_message(policy: ShardPolicy) -> str:
    """Why a new account cannot be placed, and what to change."""
    return (
        f"all {policy.max_shards} shards are full ({policy.sessions_per_shard} sessions "
        f"each, {policy.capacity} in all); raise maxShards or sessionsPerShard, "
        "or delete accounts"
    )


def first_claimant(claims: Iterable[tuple[str, str]]) -> str | None:
    """Of accounts claiming one phone, as (creationTimestamp, name), the one that keeps it."""
    ordered = sorted(claims)
    return ordered[0][1] if ordered else None
