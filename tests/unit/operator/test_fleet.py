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
    fleet = Fleet(ShardPolicy(sessions_per_shard=2, max_shards=3))
    accounts = [info(1, shard=2), info(2)]
    assert fleet.decide(accounts[0], accounts, replicas=3) == Keep(2)
    assert fleet.decide(accounts[1], accounts, replicas=3) == Assign(0)


def test_own_writes_count_before_the_index_shows_them() -> None:
    fleet = Fleet(ShardPolicy(sessions_per_shard=1, max_shards=3))
    accounts = [info(1), info(2)]
    assert fleet.decide(accounts[0], accounts, replicas=1) == Assign(0)
    fleet.record("wa-001", 0)  # the label was written; the index has not seen it yet
    assert fleet.decide(accounts[1], accounts, replicas=1) == Assign(1)
    # Once the index shows it, the memory is dropped and nothing changes.
    caught_up = [info(1, shard=0), info(2)]
    assert fleet.placements(caught_up) == {"wa-001": 0}
    assert fleet.placements(caught_up) == {"wa-001": 0}


def test_duplicate_phone_is_refused_naming_the_owner() -> None:
    fleet = Fleet(ShardPolicy())
    first, second = info(1, phone="+40712000000"), info(2, phone="+40712000000")
    assert fleet.decide(second, [first, second], replicas=1) == DuplicatePhone("wa-001")
    assert fleet.decide(first, [first, second], replicas=1) == Assign(0)


def test_no_capacity_explains_what_to_change() -> None:
    fleet = Fleet(ShardPolicy(sessions_per_shard=1, max_shards=1))
    accounts = [info(1, shard=0), info(2)]
    decision = fleet.decide(accounts[1], accounts, replicas=1)
    assert isinstance(decision, NoCapacity)
    assert "maxShards" in decision.message and "1 shards are full" in decision.message


async def test_concurrent_assignment_never_overfills_or_double_assigns() -> None:
    policy = ShardPolicy(sessions_per_shard=10, max_shards=10)
    fleet = Fleet(policy)
    accounts = [info(n) for n in range(120)]
    labels: dict[str, int] = {}

    async def place(account: AccountInfo) -> None:
        await asyncio.sleep(random.random() / 100)
        async with fleet.lock:
            index = [a for a in accounts if a.name not in labels]  # the lagging index
            decision = fleet.decide(account, index, replicas=1)
            await asyncio.sleep(0)  # the label write
            if isinstance(decision, Assign):
                assert account.name not in labels
                labels[account.name] = decision.shard
                fleet.record(account.name, decision.shard)

    await asyncio.gather(*(place(a) for a in accounts), *(place(a) for a in accounts[:30]))
    assert len(labels) == 100  # capacity: 10 shards of 10
    counts = [list(labels.values()).count(shard) for shard in range(10)]
    assert counts == [10] * 10
