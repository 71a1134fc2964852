"""The fleet's policy: a WhatsAppFleet object's spec over the operator's defaults (no kopf).

One WhatsAppFleet object governs one connector StatefulSet (``spec.statefulSet``; left
out, the operator's own). A field the spec leaves out takes the operator's default (its
WAFLEET_* variables); with no fleet object, every field does. The operator's shard limit
(WAFLEET_SHARD_LIMIT: the shards the connectors' Role names a Lease for, 1 with the
SQLite store) caps ``maxShards`` whatever the object asks, and ``minShards`` never
exceeds ``maxShards``. What was asked and could not apply is said, in ``notes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wafleet.kube.client import Resource
from wafleet_operator.planner import ShardPolicy

GROUP, VERSION, PLURAL = "wafleet.io", "v1alpha1", "whatsappfleets"
API_VERSION = f"{GROUP}/{VERSION}"
FLEETS = Resource(GROUP, VERSION, PLURAL)
KIND = "WhatsAppFleet"
FIELDS = ("sessionsPerShard", "minShards", "maxShards")


@dataclass(frozen=True)
class FleetSpec:
    """What a fleet object asks; None: left out (the operator's default applies)."""

    sessions_per_shard: int | None = None
    min_shards: int | None = None
    max_shards: int | None = None


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


def fleet_info(
    name: str, meta: Mapping[str, Any], spec: Mapping[str, Any], status: Any
) -> FleetInfo:
    statefulset = spec.get("statefulSet")
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
    sources: Mapping[str, str]  # field -> "fleet" or "default"
    notes: tuple[str, ...] = ()

    @property
    def as_asked(self) -> bool:
        return not self.notes

    def describe(self) -> str:
        values = {
            "sessionsPerShard": self.policy.sessions_per_shard,
            "minShards": self.policy.min_shards,
            "maxShards": self.policy.max_shards,
        }
        return ", ".join(f"{key} {values[key]} ({self.sources[key]})" for key in FIELDS)

    def as_status(self) -> dict[str, int]:
        return {
            "sessionsPerShard": self.policy.sessions_per_shard,
            "minShards": self.policy.min_shards,
            "maxShards": self.policy.max_shards,
            "shardLimit": self.shard_limit,
        }


def resolve(spec: FleetSpec | None, defaults: ShardPolicy, shard_limit: int) -> Resolved:
    """The fleet's spec over the operator's defaults, within the shard limit."""
    asked = spec or FleetSpec()
    sources = {
        "sessionsPerShard": "default" if asked.sessions_per_shard is None else "fleet",
        "minShards": "default" if asked.min_shards is None else "fleet",
        "maxShards": "default" if asked.max_shards is None else "fleet",
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
    return Resolved(policy=policy, shard_limit=limit, sources=sources, notes=tuple(notes))
