"""The operator's placement state: sticky, capacity-safe under concurrency, one owner per phone."""

from __future__ import annotations

import asyncio
import random

from wafleet_operator.fleet import (
    AccountInfo,
    Assign,
    DuplicatePhone,
    Fleet,
    Keep,
    NoCapacity,
)
from wafleet_operator.planner import ShardPolicy


def info(n: int, shard: int | None = None, phone: str | None = None) -> AccountInfo:
    return AccountInfo(
        name=f"wa-{n:03d}",
        phone=phone or f"+40712{n:06d}",
        created=f"2026-11-01T00:{n // 60:02d}:{n % 60:02d}Z",
        shard=shard,
    )


def test_assigned_accounts_keep_their_shard() -> None:
    fleet, policy = Fleet(), ShardPolicy(sessions_per_shard=2, max_shards=3)
    accounts = [info(1, shard=2), info(2)]
    assert fleet.decide(accounts[0], accounts, replicas=3, policy=policy) == Keep(2)
    assert fleet.decide(accounts[1], accounts, replicas=3, policy=policy) == Assign(0)


def test_own_writes_count_before_the_index_shows_them() -> None:
    fleet, policy = Fleet(), ShardPolicy(sessions_per_shard=1, max_shards=3)
    accounts = [info(1), info(2)]
    assert fleet.decide(accounts[0], accounts, replicas=1, policy=policy) == Assign(0)
    fleet.record("wa-001", 0)  # the label was written; the index has not seen it yet
    assert fleet.decide(accounts[1], accounts, replicas=1, policy=policy) == Assign(1)
    # Once the index shows it, the memory is dropped and nothing changes.
    caught_up = [info(1, shard=0), info(2)]
    assert fleet.placements(caught_up) == {"wa-001": 0}
    assert fleet.placements(caught_up) == {"wa-001": 0}


def test_duplicate_phone_is_refused_naming_the_owner() -> None:
    fleet, policy = Fleet(), ShardPolicy()
    first, second = info(1, phone="+40712000000"), info(2, phone="+40712000000")
    assert fleet.decide(second, [first, second], 1, policy) == DuplicatePhone("wa-001")
    assert fleet.decide(first, [first, second], 1, policy) == Assign(0)


def test_no_capacity_explains_what_to_change() -> None:
    fleet = Fleet()
    accounts = [info(1, shard=0), info(2)]
    decision = fleet.decide(
        accounts[1], accounts, 1, ShardPolicy(sessions_per_shard=1, max_shards=1)
    )
    assert isinstance(decision, NoCapacity)
    assert "maxShards" in decision.message and "1 shards are full" in decision.message


async def test_concurrent_assignment_never_overfills_or_double_assigns() -> None:
    policy = ShardPolicy(sessions_per_shard=10, max_shards=10)
    fleet = Fleet()
    accounts = [info(n) for n in range(120)]
    labels: dict[str, int] = {}

    async def place(account: AccountInfo) -> None:
        await asyncio.sleep(random.random() / 100)
        async with fleet.lock:
            index = [a for a in accounts if a.name not in labels]  # the lagging index
            decision = fleet.decide(account, index, replicas=1, policy=policy)
            await asyncio.sleep(0)  # the label write
            if isinstance(decision, Assign):
                assert account.name not in labels
                labels[account.name] = decision.shard
                fleet.record(account.name, decision.shard)

    await asyncio.gather(*(place(a) for a in accounts), *(place(a) for a in accounts[:30]))
    assert len(labels) == 100  # capacity: 10 shards of 10
    counts = [list(labels.values()).count(shard) for shard in range(10)]
    assert counts == [10] * 10


def test_a_policy_change_applies_to_the_next_decision_and_moves_nobody() -> None:
    fleet = Fleet()
    accounts = [info(1, shard=0), info(2, shard=0), info(3, shard=0), info(4)]
    roomy, tight = ShardPolicy(sessions_per_shard=5), ShardPolicy(sessions_per_shard=2)
    assert fleet.decide(accounts[3], accounts, 1, roomy) == Assign(0)
    assert fleet.decide(accounts[3], accounts, 1, tight) == Assign(1)  # shard 0 is over
    assert fleet.decide(accounts[0], accounts, 1, tight) == Keep(0)  # and keeps its three
    assert fleet.desired_replicas(accounts, ShardPolicy(max_shards=1)) == 1
    placed = [info(1, shard=0), info(2, shard=3)]
    # maxShards lowered below an occupied shard: it keeps running, nobody moves.
    assert fleet.desired_replicas(placed, ShardPolicy(max_shards=2)) == 4
    lowered = ShardPolicy(sessions_per_shard=1, max_shards=2)
    assert fleet.decide(info(5), [*placed, info(5)], 4, lowered) == Assign(1)
    assert isinstance(
        fleet.decide(info(6), [*placed, info(5, shard=1), info(6)], 4, lowered), NoCapacity
    )
