"""The fleet's policy: a WhatsAppFleet object's spec over the operator's defaults (no kopf).

One WhatsAppFleet object governs one connector StatefulSet (``spec.statefulSet``; left
out, the operator's own). A field the spec leaves out takes the operator's default (its
WAFLEET_* variables); with no fleet object, every field does. The operator's shard limit
(WAFLEET_SHARD_LIMIT: the shards the connectors' Role names a Lease for, 1 with the
SQLite store) caps ``maxShards`` whatever the object asks, and ``minShards`` never
exceeds ``maxShards``. What was asked and could not apply is said, in ``notes``.

The mobility fields (``drain``, ``rebalance``, ``failover``, ``moves``: how sessions move
between shards, docs/design/mobility.md) resolve the same way, field by field, over the
operator's WAFLEET_REBALANCE, _FAILOVER, _MOVE_* defaults (settings.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wafleet.kube.client import Resource
from wafleet_operator.planner import MobilityPolicy, ShardPolicy

GROUP, VERSION, PLURAL = "wafleet.io", "v1alpha1", "whatsappfleets"
API_VERSION = f"{GROUP}/{VERSION}"
FLEETS = Resource(GROUP, VERSION, PLURAL)
KIND = "WhatsAppFleet"
FIELDS = ("sessionsPerShard", "minShards", "maxShards")
MOBILITY_FIELDS = (
    "drain",
    "rebalance.enabled",
    "rebalance.maxSkew",
    "rebalance.consolidate",
    "failover.enabled",
    "failover.after",
    "moves.concurrency",
    "moves.timeout",
)
DURATION = re.compile(r"([0-9]{1,9})(s|m|h)")
UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: Any) -> float | None:
    """Seconds of a duration as the CRD writes one ("90s", "2m", "1h"); None otherwise."""
    if not isinstance(text, str):
        return None
    found = DURATION.fullmatch(text.strip())
    if found is None:
        return None
    return int(found.group(1)) * UNIT_SECONDS[found.group(2)]


def _seconds(value: float) -> str:
    return f"{value:g} s"


@dataclass(frozen=True)
class FleetSpec:
    """What a fleet object asks; None: left out (the operator's default applies)."""

    sessions_per_shard: int | None = None
    min_shards: int | None = None
    max_shards: int | None = None
    drain: frozenset[int] | None = None  # ordinals to empty ([]: none, over the default)
    rebalance: bool | None = None  # rebalance.enabled
    max_skew: int | None = None  # rebalance.maxSkew
    consolidate: bool | None = None  # rebalance.consolidate
    failover: bool | None = None  # failover.enabled
    failover_after: float | None = None  # failover.after, in seconds
    concurrency: int | None = None  # moves.concurrency
    move_timeout: float | None = None  # moves.timeout, in seconds


@dataclass(frozen=True)
class FleetInfo:
    """One WhatsAppFleet object as the operator's index holds it."""

    name: str
    uid: str
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)
    generation: int
    statefulset: str | None
    spec: FleetSpec
    status: Mapping[str, Any] = field(default_factory=dict, compare=False)


def _count(value: Any) -> int | None:
    """An integer field of the spec (the schema checks them; anything else is left out)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _section(spec: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = spec.get(key)
    return value if isinstance(value, Mapping) else {}


def _ordinals(value: Any) -> frozenset[int] | None:
    """spec.drain: the ordinals listed (what is not one is left out); None if no list."""
    if not isinstance(value, list):
        return None
    return frozenset(o for o in map(_count, value) if o is not None and o >= 0)


def fleet_info(
    name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], status: Any
) -> FleetInfo:
    statefulset = spec.get("statefulSet")
    rebalance = _section(spec, "rebalance")
    failover = _section(spec, "failover")
    moves = _section(spec, "moves")
    return FleetInfo(
        name=name,
        uid=str(meta.get("uid", "")),
        created=str(meta.get("creationTimestamp", "")),
        generation=int(meta.get("generation") or 0),
        statefulset=statefulset if isinstance(statefulset, str) and statefulset else None,
        spec=FleetSpec(
            sessions_per_shard=_count(spec.get("sessionsPerShard")),
            min_shards=_count(spec.get("minShards")),
            max_shards=_count(spec.get("maxShards")),
            drain=_ordinals(spec.get("drain")),
            rebalance=_flag(rebalance.get("enabled")),
            max_skew=_count(rebalance.get("maxSkew")),
            consolidate=_flag(rebalance.get("consolidate")),
            failover=_flag(failover.get("enabled")),
            failover_after=parse_duration(failover.get("after")),
            concurrency=_count(moves.get("concurrency")),
            move_timeout=parse_duration(moves.get("timeout")),
        ),
        status=dict(status or {}),
    )


def governing(fleets: Iterable[FleetInfo]) -> tuple[FleetInfo | None, list[FleetInfo]]:
    """Of the fleet objects naming one StatefulSet, the one that governs it (the oldest,
    then by name, as for two accounts claiming one phone) and the others, ignored."""
    ordered = sorted(fleets, key=lambda f: (f.created, f.name))
    return (ordered[0], ordered[1:]) if ordered else (None, [])


@dataclass(frozen=True)
class Resolved:
    """The policy in effect, where each value came from, and what could not apply."""

    policy: ShardPolicy
    shard_limit: int
    sources: Mapping[str, str]  # field -> "fleet" or "default" (FIELDS, MOBILITY_FIELDS)
    notes: tuple[str, ...] = ()
    mobility: MobilityPolicy = field(default_factory=MobilityPolicy)

    @property
    def as_asked(self) -> bool:
        return not self.notes

    def describe(self) -> str:
        """The policy in effect in a line: the placement fields with where each came from,
        then drain, rebalance and failover only when they are on (and then the pace)."""
        values = {
            "sessionsPerShard": self.policy.sessions_per_shard,
            "minShards": self.policy.min_shards,
            "maxShards": self.policy.max_shards,
        }
        parts = [f"{key} {values[key]} ({self.sources.get(key, 'default')})" for key in FIELDS]
        mobility = self.mobility
        source = self.sources.get
        if mobility.drain:
            ordinals = ", ".join(str(o) for o in sorted(mobility.drain))
            parts.append(f"drain [{ordinals}] ({source('drain', 'default')})")
        if mobility.rebalance:
            consolidate = "on" if mobility.consolidate else "off"
            parts.append(
                f"rebalance on (maxSkew {mobility.max_skew}, consolidate {consolidate}; "
                f"{source('rebalance.enabled', 'default')})"
            )
        if mobility.failover:
            parts.append(
                f"failover after {_seconds(mobility.failover_after)} "
                f"({source('failover.enabled', 'default')})"
            )
        if mobility.drain or mobility.rebalance or mobility.failover:
            parts.append(
                f"moves {mobility.concurrency} at a time, timeout {_seconds(mobility.move_timeout)}"
            )
        return ", ".join(parts)

    def as_status(self) -> dict[str, int]:
        return {
            "sessionsPerShard": self.policy.sessions_per_shard,
            "minShards": self.policy.min_shards,
            "maxShards": self.policy.max_shards,
            "shardLimit": self.shard_limit,
        }


def resolve(
    spec: FleetSpec | None,
    defaults: ShardPolicy,
    shard_limit: int,
    mobility: MobilityPolicy | None = None,
) -> Resolved:
    """The fleet's spec over the operator's defaults (``defaults``, ``mobility``: its
    environment), within the shard limit."""
    asked = spec or FleetSpec()
    sources = {
        "sessionsPerShard": "default" if asked.sessions_per_shard is None else "fleet",
        "minShards": "default" if asked.min_shards is None else "fleet",
        "maxShards": "default" if asked.max_shards is None else "fleet",
        **_mobility_sources(asked),
    }
    notes: list[str] = []
    per_shard = asked.sessions_per_shard
    if per_shard is None:
        per_shard = defaults.sessions_per_shard
    if per_shard < 1:  # the schema refuses it; never divide a fleet by nothing
        notes.append(f"sessionsPerShard {per_shard} is below 1: 1 applies")
        per_shard = 1
    maximum = defaults.max_shards if asked.max_shards is None else asked.max_shards
    limit = max(1, shard_limit)
    if maximum > limit:
        if asked.max_shards is not None:
            notes.append(
                f"maxShards {maximum} is above this installation's shard limit {limit} "
                "(the shards the connectors' Role names a Lease for; 1 with the SQLite "
                f"store): {limit} apply; raise sharding.shardLimit with helm upgrade"
            )
        maximum = limit
    maximum = max(1, maximum)
    minimum = defaults.min_shards if asked.min_shards is None else asked.min_shards
    if minimum > maximum:
        if asked.min_shards is not None:
            notes.append(f"minShards {minimum} is above maxShards {maximum}: {maximum} apply")
        minimum = maximum
    minimum = max(0, minimum)
    policy = ShardPolicy(sessions_per_shard=per_shard, min_shards=minimum, max_shards=maximum)
    moving = _resolve_mobility(asked, mobility or MobilityPolicy(), notes)
    return Resolved(
        policy=policy, shard_limit=limit, sources=sources, notes=tuple(notes), mobility=moving
    )


def _mobility_sources(asked: FleetSpec) -> dict[str, str]:
    given = (
        asked.drain,
        asked.rebalance,
        asked.max_skew,
        asked.consolidate,
        asked.failover,
        asked.failover_after,
        asked.concurrency,
        asked.move_timeout,
    )
    return {
        key: "default" if value is None else "fleet"
        for key, value in zip(MOBILITY_FIELDS, given, strict=True)
    }


def _resolve_mobility(
    asked: FleetSpec, defaults: MobilityPolicy, notes: list[str]
) -> MobilityPolicy:
    """The mobility fields over the defaults. A drained ordinal beyond maxShards stays (it
    empties an occupied shard there); one that does not exist has nothing to drain. What
    the schema refuses (a skew or pace below 1, a zero duration) gets the nearest valid
    value, or the default, and a note."""
    max_skew = defaults.max_skew if asked.max_skew is None else asked.max_skew
    if max_skew < 1:
        notes.append(f"rebalance.maxSkew {max_skew} is below 1: 1 applies")
        max_skew = 1
    concurrency = defaults.concurrency if asked.concurrency is None else asked.concurrency
    if concurrency < 1:
        notes.append(f"moves.concurrency {concurrency} is below 1: 1 applies")
        concurrency = 1
    after = defaults.failover_after if asked.failover_after is None else asked.failover_after
    if after <= 0:
        notes.append(
            f"failover.after {_seconds(after)} is not a wait: the default "
            f"{_seconds(defaults.failover_after)} applies"
        )
        after = defaults.failover_after
    timeout = defaults.move_timeout if asked.move_timeout is None else asked.move_timeout
    if timeout <= 0:
        notes.append(
            f"moves.timeout {_seconds(timeout)} is not a wait: the default "
            f"{_seconds(defaults.move_timeout)} applies"
        )
        timeout = defaults.move_timeout
    return MobilityPolicy(
        drain=defaults.drain if asked.drain is None else asked.drain,
        rebalance=defaults.rebalance if asked.rebalance is None else asked.rebalance,
        max_skew=max_skew,
        consolidate=defaults.consolidate if asked.consolidate is None else asked.consolidate,
        failover=defaults.failover if asked.failover is None else asked.failover,
        failover_after=after,
        concurrency=concurrency,
        move_timeout=timeout,
    )
