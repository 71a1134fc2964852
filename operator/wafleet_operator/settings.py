"""The operator's settings: WAFLEET_* variables, read once at start.

The placement policy here (WAFLEET_SESSIONS_PER_SHARD, _MIN_SHARDS, _MAX_SHARDS) is the
default of every field a WhatsAppFleet object leaves out (policy.py); the fleet object
is read at runtime. WAFLEET_SHARD_LIMIT caps maxShards whatever the object asks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from wafleet.core.envconfig import ConfigError, EnvReader
from wafleet_operator.planner import ShardPolicy

SHARD_LIMIT = 1000  # the CRD's maximum of maxShards


@dataclass(frozen=True)
class OperatorSettings:
    namespace: str
    connector_statefulset: str = "wafleet-connector"
    policy: ShardPolicy = field(default_factory=ShardPolicy)
    shard_limit: int = SHARD_LIMIT  # no fleet object may ask for more shards
    cleanup_timeout: float = 300.0  # seconds before the operator finishes a dead shard's clean-up
    peering_name: str = "wafleet"
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
            shard_limit=shard_limit,
            cleanup_timeout=read.number("CLEANUP_TIMEOUT", 300, minimum=1, maximum=86400),
            peering_name=read.string("PEERING_NAME", "wafleet"),
            watch_timeout=read.integer("WATCH_TIMEOUT", 300, minimum=10, maximum=3600),
        )
