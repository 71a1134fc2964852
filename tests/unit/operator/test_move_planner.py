"""Planned moves between shards: drain, consolidation, rebalance, failover."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wafleet.kube.handoff import Handoff
from wafleet_operator.fleet import AccountInfo
from wafleet_operator.move_planner import (
    FleetView,
    MoveRequest,
    draining,
    failover,
    loads_with_moves,
    plan,
)
from wafleet_operator.planner import MobilityPolicy, ShardPolicy, desired_replicas

PER4 = ShardPolicy(sessions_per_shard=4, min_shards=1, max_shards=6)


def account(
    name: str,
    shard: int | None,
    phase: str | None = "Connected",
    *,
    move_to: str | None = None,
    handoff: Handoff | None = None,
    deleting: bool = False,
) -> AccountInfo:
    return AccountInfo(
        name=name,
        phone=f"+{abs(hash(name)) % 10**9}",
        created="2024-01-01T00:00:00Z",
        shard=shard,
        phase=phase,
        move_to=move_to,
        handoff=handoff,
        deleting=deleting,
    )


def fleet(loads: dict[int, int]) -> list[AccountInfo]:
    """Connected accounts named s<shard>-<i>, so tests can tell where each came from."""
    return [account(f"s{shard}-{i}", shard) for shard, n in sorted(loads.items()) for i in range(n)]


def handoff(source: int, target: int, generation: int | None = None) -> Handoff:
    return Handoff(id="m1", source=source, target=target, at="", generation=generation)


def view(
    accounts: Sequence[AccountInfo],
    replicas: int,
    policy: ShardPolicy = PER4,
    dead: Iterable[int] = (),
    **mobility: object,
) -> FleetView:
    return FleetView(
        accounts=accounts,
        replicas=replicas,
        policy=policy,
        mobility=MobilityPolicy(**mobility),  # type: ignore[arg-type]
        dead=frozenset(dead),
    )


def apply(accounts: Sequence[AccountInfo], requests: Iterable[MoveRequest]) -> list[AccountInfo]:
    """The moves done: each account relabelled onto its target, its move closed."""
    targets = {r.name: r.target for r in requests}
    return [
        dataclasses.replace(a, shard=targets[a.name], move_to=None, handoff=None)
        if a.name in targets
        else a
        for a in accounts
    ]


def loads(accounts: Iterable[AccountInfo]) -> dict[int, int]:
    return dict(Counter(a.shard for a in accounts if a.shard is not None and not a.deleting))


# -- loads


def test_an_open_move_holds_room_on_both_ends_until_relabelled() -> None:
    accounts = [
        account("a", 0, handoff=handoff(0, 1)),
        account("b", 1, handoff=handoff(0, 1, generation=3)),
        account("c", 2),
        account("d", 2, deleting=True),
        account("e", None),
    ]
    assert loads_with_moves(accounts) == {0: 1, 1: 2, 2: 1}


# -- drain


def test_drain_moves_a_shards_accounts_to_the_least_loaded_with_room() -> None:
    accounts = fleet({0: 2, 1: 1, 2: 3})
    requests = plan(view(accounts, replicas=3, drain=frozenset({2})))
    assert requests == [
        MoveRequest("s2-0", 2, 1, "drain"),
        MoveRequest("s2-1", 2, 0, "drain"),
        MoveRequest("s2-2", 2, 1, "drain"),
    ]
    assert loads(apply(accounts, requests)) == {0: 3, 1: 3}


def test_drain_is_paced_counting_moves_already_under_way() -> None:
    accounts = [*fleet({0: 1, 2: 3}), account("busy", 1, move_to="0")]
    two_free = plan(view(accounts, replicas=3, drain=frozenset({2}), concurrency=3))
    assert [r.name for r in two_free] == ["s2-0", "s2-1"]
    assert plan(view(accounts, replicas=3, drain=frozenset({2}), concurrency=1)) == []


def test_highest_draining_shard_goes_first() -> None:
    accounts = fleet({0: 0, 1: 2, 2: 2})
    requests = plan(view(accounts, replicas=4, drain=frozenset({1, 2}), concurrency=1))
    assert requests == [MoveRequest("s2-0", 2, 0, "drain")]


def test_draining_and_dead_shards_never_receive() -> None:
    accounts = fleet({0: 3, 2: 3, 3: 1})  # 1 (dead) and 2 (drained) are the emptiest
    requests = plan(view(accounts, replicas=4, dead={1}, drain=frozenset({2})))
    assert sorted(r.target for r in requests) == [0, 3, 3]


def test_a_move_asked_for_already_holds_room_on_its_target() -> None:
    # shard 1 has room for 2; one move to it is asked for, not opened yet: one more fits
    accounts = [*fleet({0: 2, 1: 2, 2: 2}), account("asked", 0, move_to="1")]
    requests = plan(view(accounts, replicas=3, drain=frozenset({2}), concurrency=6))
    assert Counter(r.target for r in requests) == {1: 1, 0: 1}


def test_only_settled_accounts_are_moved() -> None:
    unsettled = ["Pending", "Connecting", "Reconnecting", "Moving", "Failed", None]
    settled = ["Connected", "QRReady", "PairingCodeReady", "LoggedOut", "QRTimeout"]
    settled += ["PasskeyRequired", "Suspended", "Replaced"]
    accounts = [account(f"u{i}", 1, phase) for i, phase in enumerate(unsettled)]
    accounts += [account(f"m{i}", 1, phase) for i, phase in enumerate(settled)]
    accounts += [account("gone", 1, deleting=True), account("busy", 1, move_to="0")]
    policy = ShardPolicy(sessions_per_shard=20, max_shards=3)
    requests = plan(view(accounts, 2, policy, drain=frozenset({1}), concurrency=20))
    assert sorted(r.name for r in requests) == sorted(f"m{i}" for i in range(len(settled)))


def test_nothing_fits_nothing_is_asked() -> None:
    policy = ShardPolicy(sessions_per_shard=2, max_shards=2)
    assert plan(view(fleet({0: 2, 1: 2}), 2, policy, drain=frozenset({1}))) == []


def test_a_lowered_max_shards_moves_nobody_without_consolidation() -> None:
    accounts = fleet({0: 1, 1: 1, 2: 1})
    policy = ShardPolicy(sessions_per_shard=4, max_shards=2)
    assert draining(view(accounts, 3, policy)) == frozenset()
    assert plan(view(accounts, 3, policy)) == []


def test_with_consolidation_a_lowered_max_shards_drains_the_shards_beyond_it() -> None:
    accounts = fleet({0: 1, 1: 1, 2: 1})
    policy = ShardPolicy(sessions_per_shard=4, max_shards=2)
    assert 2 in draining(view(accounts, 3, policy, rebalance=True))
    moved = plan(view(accounts, 3, policy, rebalance=True))
    assert MoveRequest("s2-0", 2, 0, "consolidate") in moved


# -- consolidation


def test_consolidation_drains_the_highest_shards_the_load_fits_without() -> None:
    accounts = fleet({0: 2, 1: 2, 2: 1, 3: 1})  # 6 accounts fit in 2 shards of 4
    fleet_view = view(accounts, replicas=5, rebalance=True)
    assert draining(fleet_view) == {2, 3, 4}
    requests = plan(fleet_view)
    assert requests == [
        MoveRequest("s3-0", 3, 0, "consolidate"),
        MoveRequest("s2-0", 2, 1, "consolidate"),
    ]
    assert loads(apply(accounts, requests)) == {0: 3, 1: 3}


def test_consolidation_skips_shards_listed_for_drain() -> None:
    accounts = fleet({0: 2, 1: 2, 2: 1})  # 5 accounts need 2 shards: 1 and 2, 0 drains
    fleet_view = view(accounts, replicas=3, rebalance=True, drain=frozenset({0}))
    assert draining(fleet_view) == {0}
    assert loads(apply(accounts, plan(fleet_view))) == {1: 3, 2: 2}


def test_no_consolidation_without_it_or_without_rebalance() -> None:
    accounts = fleet({0: 2, 1: 2, 2: 1})
    assert draining(view(accounts, 3, rebalance=True, consolidate=False)) == frozenset()
    assert draining(view(accounts, 3, rebalance=False)) == frozenset()
    assert plan(view(accounts, 3, rebalance=True, consolidate=False)) == []


# -- rebalance


def converge(fleet_view: FleetView, rounds: int) -> tuple[list[AccountInfo], int]:
    """Apply plan() until it asks nothing; the accounts then, and the rounds it took."""
    accounts = list(fleet_view.accounts)
    for done in range(rounds):
        requests = plan(dataclasses.replace(fleet_view, accounts=accounts))
        if not requests:
            return accounts, done
        accounts = apply(accounts, requests)
    raise AssertionError(f"still moving after {rounds} rounds")


def test_rebalance_after_a_scale_up_evens_the_shards() -> None:
    # without consolidation: with it, 8 accounts fit in 2 shards and shard 2 would drain
    accounts = fleet({0: 4, 1: 4})
    one_at_a_time = view(accounts, 3, rebalance=True, consolidate=False, max_skew=1, concurrency=1)
    settled, rounds = converge(one_at_a_time, rounds=10)
    assert loads(settled) == {0: 3, 1: 3, 2: 2}
    assert rounds == 2

    accounts = fleet({0: 4, 1: 4, 2: 1})
    settled, rounds = converge(view(accounts, 3, rebalance=True, max_skew=1), rounds=10)
    assert loads(settled) == {0: 3, 1: 3, 2: 3}
    assert rounds == 1


def test_rebalance_counts_open_moves_where_they_go() -> None:
    # one move 0 -> 2 is open: after it, 3/3/2 is within max_skew 1, nothing more to do
    accounts = [*fleet({0: 3, 1: 3, 2: 1}), account("moving", 0, handoff=handoff(0, 2))]
    assert plan(view(accounts, 3, rebalance=True, consolidate=False, max_skew=1)) == []


def test_no_rebalance_when_it_is_off() -> None:
    assert plan(view(fleet({0: 4, 1: 0}), 2, rebalance=False, max_skew=1)) == []


def test_rebalance_leaves_a_spread_within_max_skew() -> None:
    assert plan(view(fleet({0: 4, 1: 2}), 2, rebalance=True, max_skew=2)) == []


def test_rebalance_waits_for_drains() -> None:
    accounts = fleet({0: 4, 1: 0, 2: 1})
    requests = plan(view(accounts, 3, rebalance=True, max_skew=1, drain=frozenset({2})))
    assert [r.reason for r in requests] == ["drain"]


# -- failover


def test_failover_moves_every_account_of_a_dead_shard_within_capacity() -> None:
    policy = ShardPolicy(sessions_per_shard=2, max_shards=3)
    accounts = [
        account("a", 0),
        account("x", 1, "Pending"),
        account("y", 1, "Connected"),
        account("z", 1, "Connected"),
        account("b", 2),
    ]
    requests = failover(view(accounts, 3, policy, dead={1}, failover=True))
    assert requests == [MoveRequest("x", 1, 0, "failover"), MoveRequest("y", 1, 2, "failover")]


def test_failover_keeps_an_open_moves_live_target_and_replaces_a_dead_one() -> None:
    accounts = [
        account("a", 1, handoff=handoff(1, 2)),
        account("b", 1, handoff=handoff(1, 3)),
        account("c", 3, handoff=handoff(1, 3, generation=5)),
        account("d", 0),
    ]
    requests = failover(view(accounts, 4, dead={1, 3}, failover=True))
    assert requests == [
        MoveRequest("a", 1, 2, "failover"),
        MoveRequest("b", 1, 0, "failover"),
        MoveRequest("c", 3, 2, "failover"),
    ]


def test_failover_off_moves_nothing_and_plan_leaves_dead_shards_alone() -> None:
    accounts = fleet({0: 1, 1: 3})
    assert failover(view(accounts, 2, dead={1})) == []
    assert plan(view(accounts, 2, dead={1}, drain=frozenset({1}), rebalance=True)) == []


def test_plan_leaves_room_for_failover() -> None:
    policy = ShardPolicy(sessions_per_shard=2, max_shards=3)
    accounts = fleet({0: 1, 1: 1, 2: 2})
    fleet_view = view(accounts, 3, policy, dead={1}, drain=frozenset({2}), failover=True)
    both = [*failover(fleet_view), *plan(fleet_view)]
    assert both == [MoveRequest("s1-0", 1, 0, "failover")]  # shard 0 is full then


# -- properties

PHASES = ["Connected", "Connected", "QRReady", "Suspended", "Pending", "Failed", None]


@st.composite
def fleets(draw: st.DrawFn, settled: bool = False) -> FleetView:
    per = draw(st.integers(1, 4))
    max_shards = draw(st.integers(2, 5))
    policy = ShardPolicy(per, draw(st.integers(0, 2)), max_shards)
    accounts: list[AccountInfo] = []
    for i in range(draw(st.integers(0, per * max_shards))):
        shard = draw(st.integers(0, max_shards - 1))
        phase = "Connected" if settled else draw(st.sampled_from(PHASES))
        move = None
        if not settled and draw(st.integers(0, 4)) == 0:
            move = handoff(shard, draw(st.integers(0, max_shards - 1)))
            assume(move.target != shard)
        accounts.append(account(f"a{i:02}", shard, phase, handoff=move))
    assume(all(n <= per for n in loads_with_moves(accounts).values()))
    highest = max((a.shard for a in accounts if a.shard is not None), default=-1)
    replicas = draw(st.integers(highest + 1, max_shards))
    shards = st.frozensets(st.integers(0, max_shards - 1), max_size=2)
    mobility = MobilityPolicy(
        drain=draw(shards),
        rebalance=draw(st.booleans()),
        consolidate=draw(st.booleans()),
        max_skew=draw(st.integers(1, 3)),
        failover=draw(st.booleans()),
        concurrency=draw(st.integers(1, 6)),
    )
    dead = frozenset() if settled else draw(shards)
    return FleetView(accounts, replicas, policy, mobility, dead)


@settings(max_examples=300)
@given(fleets())
def test_no_batch_overfills_or_feeds_a_closed_shard(fleet_view: FleetView) -> None:
    planned, failed_over = plan(fleet_view), failover(fleet_view)
    after = loads_with_moves(apply(fleet_view.accounts, [*planned, *failed_over]))
    per = fleet_view.policy.sessions_per_shard
    moving = sum(1 for a in fleet_view.accounts if a.moving)
    assert len(planned) <= max(0, fleet_view.mobility.concurrency - moving)
    closed = draining(fleet_view) | fleet_view.dead
    for request in [*planned, *failed_over]:
        assert after[request.target] <= per
        assert request.target < fleet_view.policy.max_shards
        assert request.target not in closed or request.reason == "failover"
    assert all(r.source not in fleet_view.dead for r in planned)
    assert len({r.name for r in [*planned, *failed_over]}) == len(planned) + len(failed_over)


@settings(max_examples=200)
@given(fleets(settled=True))
def test_repeated_plans_converge(fleet_view: FleetView) -> None:
    policy = fleet_view.policy
    accounts, total = list(fleet_view.accounts), len(fleet_view.accounts)
    replicas = fleet_view.replicas
    for _ in range(total + total * total + 2):
        current = dataclasses.replace(fleet_view, accounts=accounts, replicas=replicas)
        requests = plan(current)
        if not requests:
            break
        accounts = apply(accounts, requests)
        replicas = max(replicas, desired_replicas(loads(accounts), policy))
    else:
        raise AssertionError("plan() still moves accounts")
    empties = draining(current)
    if not fleet_view.mobility.rebalance or any(a.shard in empties for a in accounts):
        return  # no rebalance, or a drain waits for room: no move possible
    top = min(max(replicas, policy.min_shards), policy.max_shards)
    closed = empties | fleet_view.mobility.drain
    final = loads(accounts)
    spread_over = [final.get(o, 0) for o in range(top) if o not in closed]
    if len(spread_over) >= 2:
        assert max(spread_over) - min(spread_over) <= fleet_view.mobility.max_skew
