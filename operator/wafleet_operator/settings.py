"""The operator's settings: WAFLEET_* variables, read once at start.

The placement policy here (WAFLEET_SESSIONS_PER_SHARD, _MIN_SHARDS, _MAX_SHARDS) is the
default of every field a WhatsAppFleet object leaves out (policy.py); the fleet object
is read at runtime. WAFLEET_SHARD_LIMIT caps maxShards whatever the object asks.

So are the mobility defaults (how sessions move between shards, docs/design/mobility.md):
WAFLEET_DRAIN (ordinals to empty: "[2, 3]" or "2,3"; default none), WAFLEET_REBALANCE
(false), WAFLEET_REBALANCE_MAX_SKEW (2), WAFLEET_CONSOLIDATE (true), WAFLEET_FAILOVER
(false), WAFLEET_FAILOVER_AFTER (120 seconds), WAFLEET_MOVE_CONCURRENCY (5) and
WAFLEET_MOVE_TIMEOUT (30 seconds). A duration is seconds ("120") or as the fleet object
writes one ("90s", "2m", "1h").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from wafleet.core.envconfig import ConfigError, EnvReader
from wafleet_operator.planner import MobilityPolicy, ShardPolicy
from wafleet_operator.policy import parse_duration

SHARD_LIMIT = 1000  # the CRD's maximum of maxShards
ORDINAL_MAX = 999  # the CRD's largest ordinal in spec.drain


def read_duration(read: EnvReader, key: str, default: float, *, maximum: float) -> float:
    """Seconds, from "120" (seconds) or "90s", "2m", "1h"; at least 1, at most ``maximum``."""
    value = read.raw(key)
    if value is None:
        return default
    seconds = parse_duration(value)
    if seconds is None:
        try:
            seconds = float(value)
        except ValueError:
            raise ConfigError(
                f"{read.name(key)}={value!r} is not a duration; write seconds (120) "
                "or a number with s, m or h (90s, 2m, 1h)"
            ) from None
    if not 1 <= seconds <= maximum:
        raise ConfigError(f"{read.name(key)}={value!r} is out of range; use 1..{maximum:g} seconds")
    return seconds


def read_ordinals(read: EnvReader, key: str) -> frozenset[int]:
    """Shard ordinals: a JSON list ("[2, 3]", as the chart writes it) or "2,3"."""
    value = read.raw(key)
    if value is None:
        return frozenset()
    try:
        items = json.loads(value) if value.startswith("[") else value.replace(",", " ").split()
    except ValueError:
        items = None
    ordinals: set[int] = set()
    for item in items if isinstance(items, list) else [None]:
        ordinal = int(item) if isinstance(item, str) and item.isdigit() else item
        if (
            not isinstance(ordinal, int)
            or isinstance(ordinal, bool)
            or not 0 <= ordinal <= ORDINAL_MAX
        ):
            raise ConfigError(
                f"{read.name(key)}={value!r} is not a list of shard ordinals; "
                f'write e.g. "[2, 3]" or "2,3" (each 0..{ORDINAL_MAX})'
            )
        ordinals.add(ordinal)
    return frozenset(ordinals)


@dataclass(frozen=True)
class OperatorSettings:
    namespace: str
    connector_statefulset: str = "wafleet-connector"
    policy: ShardPolicy = field(default_factory=ShardPolicy)
    mobility: MobilityPolicy = field(default_factory=MobilityPolicy)  # the fleet's defaults
    shard_limit: int = SHARD_LIMIT  # no fleet object may ask for more shards
    cleanup_timeout: float = 300.0  # seconds before the operator finishes a dead shard's clean-up
    peering_name: str = "wafleet"
    # Seconds a replica's peering record stays alive without a keep-alive: how long a
    # restarted operator waits for a predecessor that died without saying goodbye.
    peering_lifetime: int = 60
    watch_timeout: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        read = EnvReader(os.environ if env is None else env)
        namespace = read.optional("NAMESPACE")
        if namespace is None:
            raise ConfigError("WAFLEET_NAMESPACE is required: the namespace of the accounts")
        min_shards = read.integer("MIN_SHARDS", 1, minimum=0, maximum=1000)
        max_shards = read.integer("MAX_SHARDS", 20, minimum=1, maximum=1000)
        if min_shards > max_shards:
            raise ConfigError("WAFLEET_MIN_SHARDS must not be above WAFLEET_MAX_SHARDS")
        shard_limit = read.integer("SHARD_LIMIT", SHARD_LIMIT, minimum=1, maximum=SHARD_LIMIT)
        if max_shards > shard_limit:
            raise ConfigError("WAFLEET_MAX_SHARDS must not be above WAFLEET_SHARD_LIMIT")
        return cls(
            namespace=namespace,
            connector_statefulset=read.string("CONNECTOR_STATEFULSET", "wafleet-connector"),
            policy=ShardPolicy(
                sessions_per_shard=read.integer("SESSIONS_PER_SHARD", 25, minimum=1, maximum=1000),
                min_shards=min_shards,
                max_shards=max_shards,
            ),
            mobility=MobilityPolicy(
                drain=read_ordinals(read, "DRAIN"),
                rebalance=read.boolean("REBALANCE", False),
                max_skew=read.integer("REBALANCE_MAX_SKEW", 2, minimum=1, maximum=1000),
                consolidate=read.boolean("CONSOLIDATE", True),
                failover=read.boolean("FAILOVER", False),
                failover_after=read_duration(read, "FAILOVER_AFTER", 120.0, maximum=86400),
                concurrency=read.integer("MOVE_CONCURRENCY", 5, minimum=1, maximum=100),
                move_timeout=read_duration(read, "MOVE_TIMEOUT", 30.0, maximum=3600),
            ),
            shard_limit=shard_limit,
            cleanup_timeout=read.number("CLEANUP_TIMEOUT", 300, minimum=1, maximum=86400),
            peering_name=read.string("PEERING_NAME", "wafleet"),
            peering_lifetime=read.integer("PEERING_LIFETIME", 60, minimum=15, maximum=3600),
            watch_timeout=read.integer("WATCH_TIMEOUT", 300, minimum=10, maximum=3600),
        )
