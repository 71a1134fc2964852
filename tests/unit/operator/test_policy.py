"""The fleet's policy: a WhatsAppFleet spec over the operator's environment defaults."""

from __future__ import annotations

import pytest

from wafleet.core.envconfig import ConfigError
from wafleet_operator.planner import ShardPolicy
from wafleet_operator.policy import FleetInfo, FleetSpec, fleet_info, governing, resolve
from wafleet_operator.settings import OperatorSettings

DEFAULTS = ShardPolicy(sessions_per_shard=25, min_shards=1, max_shards=20)


def test_no_fleet_object_is_the_environment() -> None:
    resolved = resolve(None, DEFAULTS, 1000)
    assert resolved.policy == DEFAULTS
    assert resolved.as_asked
    assert resolved.describe() == (
        "sessionsPerShard 25 (default), minShards 1 (default), maxShards 20 (default)"
    )


def test_the_fleet_spec_wins_field_by_field() -> None:
    resolved = resolve(FleetSpec(sessions_per_shard=10, max_shards=5), DEFAULTS, 1000)
    assert resolved.policy == ShardPolicy(sessions_per_shard=10, min_shards=1, max_shards=5)
    assert resolved.sources == {
        "sessionsPerShard": "fleet",
        "minShards": "default",
        "maxShards": "fleet",
    }
    assert resolved.as_status() == {
        "sessionsPerShard": 10,
        "minShards": 1,
        "maxShards": 5,
        "shardLimit": 1000,
    }
    assert resolve(FleetSpec(min_shards=0), DEFAULTS, 1000).policy.min_shards == 0


def test_the_shard_limit_caps_max_shards_and_says_so() -> None:
    resolved = resolve(FleetSpec(max_shards=30), DEFAULTS, 20)
    assert resolved.policy.max_shards == 20
    assert not resolved.as_asked
    (note,) = resolved.notes
    assert note.startswith("maxShards 30 is above this installation's shard limit 20")
    assert "sharding.shardLimit" in note
    # the SQLite store: one shard, whatever the object asks
    assert resolve(FleetSpec(min_shards=3, max_shards=3), DEFAULTS, 1).policy.max_shards == 1


def test_min_shards_never_exceeds_max_shards() -> None:
    # Both from the object: the CRD's CEL rule refuses it on a real API server; were it
    # there anyway, the maximum wins and the status says so.
    both = resolve(FleetSpec(min_shards=5, max_shards=3), DEFAULTS, 1000)
    assert (both.policy.min_shards, both.policy.max_shards) == (3, 3)
    assert both.notes == ("minShards 5 is above maxShards 3: 3 apply",)
    # The object lowers maxShards under the default minShards: the default follows, silently
    # (what the object asked applies as asked).
    lowered = resolve(FleetSpec(max_shards=2), ShardPolicy(min_shards=4, max_shards=20), 1000)
    assert (lowered.policy.min_shards, lowered.policy.max_shards) == (2, 2)
    assert lowered.as_asked
    # The object asks for more shards kept than the environment's maximum allows.
    raised = resolve(FleetSpec(min_shards=30), DEFAULTS, 1000)
    assert raised.policy.min_shards == 20 and not raised.as_asked


def test_impossible_values_never_break_placement() -> None:
    # The schema refuses them; a resolved policy is valid anyway.
    resolved = resolve(FleetSpec(sessions_per_shard=0, min_shards=-1, max_shards=0), DEFAULTS, 9)
    assert resolved.policy == ShardPolicy(sessions_per_shard=1, min_shards=0, max_shards=1)


def test_fleet_info_reads_the_spec_and_leaves_out_what_is_not_a_count() -> None:
    meta = {"uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3}
    spec = {"statefulSet": "wafleet-connector", "sessionsPerShard": 10, "maxShards": "9"}
    info = fleet_info("wafleet", meta, spec, {"pending": 1})
    assert info.spec == FleetSpec(sessions_per_shard=10)
    assert (info.statefulset, info.generation, info.uid) == ("wafleet-connector", 3, "u1")
    assert info.status == {"pending": 1}
    assert fleet_info("x", {}, {"minShards": True}, None).spec == FleetSpec()
    assert fleet_info("x", {}, {}, None).statefulset is None


def test_the_oldest_fleet_object_governs() -> None:
    def made(name: str, created: str) -> FleetInfo:
        return FleetInfo(name, name, created, 1, None, FleetSpec())

    older, newer, tie = (
        made("b", "2026-01-01T00:00:00Z"),
        made("a", "2026-02-01T00:00:00Z"),
        made("a0", "2026-01-01T00:00:00Z"),
    )
    assert governing([newer, older]) == (older, [newer])
    assert governing([older, tie])[0] == tie  # same second: by name
    assert governing([]) == (None, [])


def test_the_shard_limit_setting() -> None:
    env = {"WAFLEET_NAMESPACE": "wafleet", "WAFLEET_MAX_SHARDS": "12"}
    assert OperatorSettings.from_env(env).shard_limit == 1000
    assert OperatorSettings.from_env({**env, "WAFLEET_SHARD_LIMIT": "12"}).shard_limit == 12
    with pytest.raises(ConfigError, match="WAFLEET_MAX_SHARDS must not be above"):
        OperatorSettings.from_env({**env, "WAFLEET_SHARD_LIMIT": "11"})
