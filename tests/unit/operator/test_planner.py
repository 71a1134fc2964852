"""Shard placement rules, as plain functions."""

from __future__ import annotations

import pytest

from wafleet_operator.planner import (
    ShardPolicy,
    choose_shard,
    desired_replicas,
    first_claimant,
    no_capacity_message,
    room,
    shard_loads,
)

POLICY = ShardPolicy(sessions_per_shard=3, min_shards=1, max_shards=4)


def test_loads_count_accounts_per_shard() -> None:
    assert shard_loads([0, 0, 2, 1, 0]) == {0: 3, 2: 1, 1: 1}


def test_first_account_goes_to_shard_zero() -> None:
    assert choose_shard({}, replicas=0, policy=POLICY) == 0


def test_least_loaded_with_room_lowest_ordinal_on_ties() -> None:
    assert choose_shard({0: 2, 1: 1, 2: 1}, replicas=3, policy=POLICY) == 1
    assert choose_shard({0: 1, 1: 1}, replicas=2, policy=POLICY) == 0
    assert choose_shard({0: 3, 1: 2}, replicas=2, policy=POLICY) == 1


def test_a_new_shard_opens_only_when_all_running_are_full() -> None:
    assert choose_shard({0: 2}, replicas=1, policy=POLICY) == 0
    assert choose_shard({0: 3}, replicas=1, policy=POLICY) == 1
    assert choose_shard({0: 3, 1: 3}, replicas=2, policy=POLICY) == 2


def test_full_at_max_shards_gives_none() -> None:
    full = {0: 3, 1: 3, 2: 3, 3: 3}
    assert choose_shard(full, replicas=4, policy=POLICY) is None


def test_min_shards_are_used_before_opening_more() -> None:
    policy = ShardPolicy(sessions_per_shard=3, min_shards=3, max_shards=4)
    assert choose_shard({0: 1}, replicas=0, policy=policy) == 1
    assert choose_shard({0: 1, 1: 1}, replicas=3, policy=policy) == 2


def test_desired_replicas() -> None:
    assert desired_replicas({}, POLICY) == 1  # at least min_shards
    assert desired_replicas({0: 3, 1: 1}, POLICY) == 2
    assert desired_replicas({0: 1, 3: 1}, POLICY) == 4  # the highest occupied ordinal counts
    # Scale down only removes empty highest ordinals: shard 1 empty, shard 2 not.
    assert desired_replicas({0: 1, 1: 0, 2: 1}, POLICY) == 3
    assert desired_replicas({0: 1, 1: 0, 2: 0}, POLICY) == 1
    # An occupied shard beyond maxShards (lowered at runtime) keeps running: nobody moves.
    assert desired_replicas({0: 3, 1: 3, 2: 3, 3: 3, 4: 1}, POLICY) == 5
    assert desired_replicas({}, ShardPolicy(min_shards=0)) == 0


def test_no_new_placement_beyond_max_shards_or_on_a_shard_over_capacity() -> None:
    # maxShards lowered to 2 while shard 3 holds accounts: it takes no new one.
    assert choose_shard({0: 3, 1: 3, 3: 1}, replicas=4, policy=ShardPolicy(3, 1, 2)) is None
    # sessionsPerShard lowered to 2 below shard 0's load of 3: shard 1 takes the next.
    assert choose_shard({0: 3, 1: 1}, replicas=2, policy=ShardPolicy(2, 1, 4)) == 1
    assert choose_shard({0: 3, 1: 2}, replicas=2, policy=ShardPolicy(2, 1, 4)) == 2


def test_room_counts_the_free_places_of_the_allowed_shards() -> None:
    assert room({}, POLICY) == 12
    assert room({0: 3, 1: 1, 5: 2}, POLICY) == 8  # shard 5 is beyond maxShards: no room
    assert room({0: 5}, POLICY) == 9  # over capacity is no negative room
    assert "all 4 shards are full (3 sessions each, 12 in all)" in no_capacity_message(POLICY)


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="sessionsPerShard"):
        ShardPolicy(sessions_per_shard=0)
    with pytest.raises(ValueError, match="minShards"):
        ShardPolicy(min_shards=5, max_shards=2)
    assert ShardPolicy(sessions_per_shard=10, max_shards=3).capacity == 30


def test_first_claimant_is_the_oldest_then_by_name() -> None:
    assert first_claimant([("2026-01-02T00:00:00Z", "b"), ("2026-01-01T00:00:00Z", "c")]) == "c"
    assert first_claimant([("2026-01-01T00:00:00Z", "b"), ("2026-01-01T00:00:00Z", "a")]) == "a"
    assert first_claimant([]) is None


def test_filling_100_accounts_at_ten_per_shard_uses_ten_shards() -> None:
    policy = ShardPolicy(sessions_per_shard=10, min_shards=1, max_shards=20)
    placements: list[int] = []
    replicas = 1
    for _ in range(100):
        loads = shard_loads(placements)
        shard = choose_shard(loads, replicas, policy)
        assert shard is not None
        placements.append(shard)
        replicas = desired_replicas(shard_loads(placements), policy)
    assert shard_loads(placements) == {n: 10 for n in range(10)}
    assert replicas == 10
