"""The fleet's policy: a WhatsAppFleet spec over the operator's environment defaults."""

from __future__ import annotations

import re

import pytest

from wafleet.core.envconfig import ConfigError
from wafleet_operator.planner import MobilityPolicy, ShardPolicy
from wafleet_operator.policy import (
    FIELDS,
    MOBILITY_FIELDS,
    FleetInfo,
    FleetSpec,
    fleet_info,
    governing,
    parse_duration,
    resolve,
)
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
    assert {key: resolved.sources[key] for key in FIELDS} == {
        "sessionsPerShard": "fleet",
        "minShards": "default",
        "maxShards": "fleet",
    }
    assert {resolved.sources[key] for key in MOBILITY_FIELDS} == {"default"}
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


# --- how sessions move: drain, rebalance, failover, moves -------------------------------

MOBILE = MobilityPolicy(rebalance=True, max_skew=3, failover_after=60.0, move_timeout=20.0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("2m", 120.0), ("1h", 3600.0), (" 45s ", 45.0), ("0s", 0.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "1.5m", "2d", "m", "-1s", "2 m", "1h30m", None, 90])
def test_parse_duration_refuses_anything_else(text: object) -> None:
    assert parse_duration(text) is None


def test_no_mobility_in_the_spec_is_the_operators_defaults() -> None:
    assert resolve(None, DEFAULTS, 1000).mobility == MobilityPolicy()  # existing calls
    resolved = resolve(None, DEFAULTS, 1000, MOBILE)
    assert resolved.mobility == MOBILE
    assert resolved.as_asked
    assert {resolved.sources[key] for key in MOBILITY_FIELDS} == {"default"}


def test_the_mobility_fields_win_one_by_one() -> None:
    spec = FleetSpec(
        drain=frozenset({2}),
        max_skew=1,
        consolidate=False,
        failover=True,
        move_timeout=45.0,
    )
    resolved = resolve(spec, DEFAULTS, 1000, MOBILE)
    assert resolved.mobility == MobilityPolicy(
        drain=frozenset({2}),
        rebalance=True,  # the default
        max_skew=1,
        consolidate=False,
        failover=True,
        failover_after=60.0,  # the default
        concurrency=5,
        move_timeout=45.0,
    )
    assert resolved.sources["drain"] == "fleet"
    assert resolved.sources["rebalance.enabled"] == "default"
    assert resolved.sources["rebalance.maxSkew"] == "fleet"
    assert resolved.sources["failover.after"] == "default"
    assert resolved.as_asked
    # An empty drain list in the spec drains none, whatever the default drains.
    assert (
        resolve(
            FleetSpec(drain=frozenset()), DEFAULTS, 1000, MobilityPolicy(drain=frozenset({1}))
        ).mobility.drain
        == frozenset()
    )


def test_a_drained_ordinal_beyond_max_shards_is_kept() -> None:
    resolved = resolve(FleetSpec(max_shards=3, drain=frozenset({5, 1})), DEFAULTS, 1000)
    assert resolved.mobility.drain == frozenset({1, 5})  # 5: an occupied shard beyond 3
    assert resolved.as_asked


def test_describe_names_what_moves_only_when_it_is_on() -> None:
    quiet = resolve(FleetSpec(max_skew=5, move_timeout=10.0), DEFAULTS, 1000)
    assert quiet.describe() == (
        "sessionsPerShard 25 (default), minShards 1 (default), maxShards 20 (default)"
    )
    spec = FleetSpec(drain=frozenset({3, 2}), rebalance=True, max_skew=2, failover_after=120.0)
    resolved = resolve(spec, DEFAULTS, 1000, MobilityPolicy(failover=True))
    assert resolved.describe() == (
        "sessionsPerShard 25 (default), minShards 1 (default), maxShards 20 (default), "
        "drain [2, 3] (fleet), rebalance on (maxSkew 2, consolidate on; fleet), "
        "failover after 120 s (default), moves 5 at a time, timeout 30 s"
    )
    off = resolve(FleetSpec(rebalance=True, consolidate=False), DEFAULTS, 1000)
    assert "rebalance on (maxSkew 2, consolidate off; fleet)" in off.describe()
    assert "failover" not in off.describe() and "drain" not in off.describe()


def test_impossible_mobility_values_never_break_the_operator() -> None:
    # The schema refuses them; the policy in effect is valid anyway, and says what applied.
    spec = FleetSpec(max_skew=0, concurrency=0, failover_after=0.0, move_timeout=0.0)
    resolved = resolve(spec, DEFAULTS, 1000, MOBILE)
    assert (resolved.mobility.max_skew, resolved.mobility.concurrency) == (1, 1)
    assert (resolved.mobility.failover_after, resolved.mobility.move_timeout) == (60.0, 20.0)
    assert resolved.notes == (
        "rebalance.maxSkew 0 is below 1: 1 applies",
        "moves.concurrency 0 is below 1: 1 applies",
        "failover.after 0 s is not a wait: the default 60 s applies",
        "moves.timeout 0 s is not a wait: the default 20 s applies",
    )


def test_fleet_info_reads_the_mobility_fields_leniently() -> None:
    spec = {
        "drain": [2, 0, 2],
        "rebalance": {"enabled": True, "maxSkew": 3, "consolidate": False},
        "failover": {"enabled": True, "after": "2m"},
        "moves": {"concurrency": 10, "timeout": "45s"},
    }
    assert fleet_info("f", {}, spec, None).spec == FleetSpec(
        drain=frozenset({0, 2}),
        rebalance=True,
        max_skew=3,
        consolidate=False,
        failover=True,
        failover_after=120.0,
        concurrency=10,
        move_timeout=45.0,
    )
    odd = {
        "drain": [1, "2", True, -1, 3.5],
        "rebalance": {"enabled": "yes", "maxSkew": "3"},
        "failover": "on",
        "moves": {"timeout": "soon"},
    }
    assert fleet_info("f", {}, odd, None).spec == FleetSpec(drain=frozenset({1}))
    assert fleet_info("f", {}, {"drain": "2"}, None).spec.drain is None
    assert fleet_info("f", {}, {"drain": []}, None).spec.drain == frozenset()


# --- the operator's environment ----------------------------------------------------------

ENV = {"WAFLEET_NAMESPACE": "wafleet"}


def test_the_mobility_defaults_from_the_environment() -> None:
    assert OperatorSettings.from_env(ENV).mobility == MobilityPolicy(
        drain=frozenset(),
        rebalance=False,
        max_skew=2,
        consolidate=True,
        failover=False,
        failover_after=120.0,
        concurrency=5,
        move_timeout=30.0,
    )
    env = {
        **ENV,
        "WAFLEET_DRAIN": "[2, 3]",
        "WAFLEET_REBALANCE": "true",
        "WAFLEET_REBALANCE_MAX_SKEW": "4",
        "WAFLEET_CONSOLIDATE": "false",
        "WAFLEET_FAILOVER": "on",
        "WAFLEET_FAILOVER_AFTER": "2m",
        "WAFLEET_MOVE_CONCURRENCY": "10",
        "WAFLEET_MOVE_TIMEOUT": "45",
    }
    assert OperatorSettings.from_env(env).mobility == MobilityPolicy(
        drain=frozenset({2, 3}),
        rebalance=True,
        max_skew=4,
        consolidate=False,
        failover=True,
        failover_after=120.0,
        concurrency=10,
        move_timeout=45.0,
    )
    assert OperatorSettings.from_env({**ENV, "WAFLEET_DRAIN": "1, 4"}).mobility.drain == {1, 4}
    assert OperatorSettings.from_env({**ENV, "WAFLEET_DRAIN": "[]"}).mobility.drain == set()
    assert (
        OperatorSettings.from_env({**ENV, "WAFLEET_MOVE_TIMEOUT": "1h"}).mobility.move_timeout
        == 3600
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WAFLEET_REBALANCE", "maybe", "WAFLEET_REBALANCE='maybe' is not true or false"),
        ("WAFLEET_CONSOLIDATE", "2", "WAFLEET_CONSOLIDATE='2' is not true or false"),
        ("WAFLEET_FAILOVER", "enabled", "WAFLEET_FAILOVER='enabled' is not true or false"),
        ("WAFLEET_REBALANCE_MAX_SKEW", "0", "WAFLEET_REBALANCE_MAX_SKEW=0 is out of range"),
        ("WAFLEET_MOVE_CONCURRENCY", "101", "WAFLEET_MOVE_CONCURRENCY=101 is out of range"),
        ("WAFLEET_MOVE_CONCURRENCY", "five", "WAFLEET_MOVE_CONCURRENCY='five' is not a whole"),
        ("WAFLEET_FAILOVER_AFTER", "2d", "WAFLEET_FAILOVER_AFTER='2d' is not a duration"),
        ("WAFLEET_FAILOVER_AFTER", "0s", "WAFLEET_FAILOVER_AFTER='0s' is out of range"),
        ("WAFLEET_MOVE_TIMEOUT", "2h", "WAFLEET_MOVE_TIMEOUT='2h' is out of range; use 1..3600"),
        ("WAFLEET_DRAIN", "[1000]", "WAFLEET_DRAIN='[1000]' is not a list of shard ordinals"),
        ("WAFLEET_DRAIN", "two", "WAFLEET_DRAIN='two' is not a list of shard ordinals"),
        ("WAFLEET_DRAIN", "[2", "WAFLEET_DRAIN='[2' is not a list of shard ordinals"),
        ("WAFLEET_DRAIN", "[-1]", "WAFLEET_DRAIN='[-1]' is not a list of shard ordinals"),
    ],
)
def test_bad_mobility_settings_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        OperatorSettings.from_env({**ENV, name: value})
