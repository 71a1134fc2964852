"""The WhatsAppFleet status, computed by plain functions: shards, counts, conditions, and
no write when nothing changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from wafleet.kube.client import KubeError
from wafleet.kube.handoff import Handoff
from wafleet_operator.fleet import AccountInfo
from wafleet_operator.fleet_status import (
    LeaseView,
    capacity_condition,
    duplicate_status,
    fleet_status,
    lease_view,
    move_rows,
    ready_condition,
    shard_rows,
)
from wafleet_operator.planner import ShardPolicy
from wafleet_operator.policy import FleetInfo, FleetSpec, resolve
from wafleet_operator.reporter import Reporter, changed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STS = "wafleet-connector"
POLICY = ShardPolicy(sessions_per_shard=2, min_shards=1, max_shards=3)
UP = LeaseView(holder=f"{STS}-0", current=True)


def account(n: int, shard: int | None, deleting: bool = False) -> AccountInfo:
    return AccountInfo(f"wa-{n}", f"+4071200000{n}", "2026-01-01T00:00:00Z", shard, deleting)


def fleet(status: dict[str, Any] | None = None, generation: int = 4) -> FleetInfo:
    return FleetInfo(
        "wafleet", "uid-1", "2026-01-01T00:00:00Z", generation, STS, FleetSpec(), status or {}
    )


def status_of(
    accounts: list[AccountInfo],
    replicas: int | None,
    leases: dict[int, LeaseView],
    shown: dict[str, Any] | None = None,
    now: datetime = NOW,
    spec: FleetSpec | None = None,
    draining: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    placements = {a.name: a.shard for a in accounts if a.shard is not None}
    return fleet_status(
        fleet(shown),
        resolve(spec, POLICY, 1000),
        shown=shown or {},
        accounts=accounts,
        placements=placements,
        replicas=replicas,
        leases=leases,
        statefulset=STS,
        now=now,
        draining=draining,
    )


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_healthy_fleet() -> None:
    accounts = [account(1, 0), account(2, 0), account(3, 1), account(4, None)]
    leases = {0: UP, 1: LeaseView(f"{STS}-1", True)}
    status = status_of(accounts, 2, leases)
    assert (status["accounts"], status["pending"], status["replicas"]) == (4, 1, 2)
    assert status["observedGeneration"] == 4
    assert status["policy"] == {
        "sessionsPerShard": 2,
        "minShards": 1,
        "maxShards": 3,
        "shardLimit": 1000,
    }
    assert status["shards"] == [
        {
            "ordinal": 0,
            "accounts": 2,
            "capacity": 2,
            "leaseCurrent": True,
            "draining": False,
            "leaseHolder": f"{STS}-0",
        },
        {
            "ordinal": 1,
            "accounts": 1,
            "capacity": 2,
            "leaseCurrent": True,
            "draining": False,
            "leaseHolder": f"{STS}-1",
        },
    ]
    # Nothing moves: moves and draining are null (the merge patch removes them).
    assert (status["moves"], status["movesInProgress"], status["draining"]) == (None, 0, None)
    found = conditions(status)
    assert [c["type"] for c in status["conditions"]] == [
        "Ready",
        "CapacityAvailable",
        "PolicyApplied",
    ]
    assert found["Ready"]["status"] == "True"
    assert found["Ready"]["message"] == (
        "3 placed accounts on 2 shards, each shard running with a current Lease"
    )
    assert (
        found["CapacityAvailable"]["message"] == "room for 3 more accounts on up to 3 shards of 2"
    )
    assert found["PolicyApplied"]["message"].startswith("in effect: sessionsPerShard 2 (default)")
    assert all(c["observedGeneration"] == 4 for c in status["conditions"])
    assert all(c["lastTransitionTime"] == "2026-12-01T12:00:00.000Z" for c in status["conditions"])


def test_an_empty_fleet_is_ready() -> None:
    ready = conditions(status_of([], 1, {}))["Ready"]
    assert (ready["status"], ready["message"]) == ("True", "no account is placed on a shard yet")


def test_not_ready_names_the_shards_and_why() -> None:
    loads = {0: 2, 1: 1, 3: 1}
    leases = {0: UP, 1: LeaseView(f"{STS}-1", False), 2: LeaseView()}
    true, reason, message = ready_condition(loads, 3, leases, STS)
    assert (true, reason) == (False, "LeaseNotCurrent")
    assert message == (
        f"shard 1 (1 account) has no current Lease, last held by {STS}-1; "
        "shard 3 (1 account) is not running (the StatefulSet has 3 replicas)"
    )
    assert ready_condition({0: 1}, 0, {}, STS)[1] == "ShardNotRunning"
    missing = ready_condition({}, None, {}, STS)
    assert missing == (
        False,
        "StatefulSetMissing",
        f"the connector StatefulSet {STS} was not found",
    )


def test_a_long_list_of_problems_fits_a_condition_message() -> None:
    loads = {n: 1 for n in range(200)}
    _, _, message = ready_condition(loads, 200, {}, STS)
    assert len(message) <= 1024
    assert message.startswith("shard 0 (1 account) has no current Lease; shard 1")
    assert message.endswith(" more")


def test_capacity_says_when_every_shard_is_full() -> None:
    assert capacity_condition({0: 2, 1: 2, 2: 2}, POLICY, 3) == (
        False,
        "NoCapacity",
        "all 3 shards are full (2 sessions each, 6 in all); raise maxShards or "
        "sessionsPerShard, or delete accounts; 3 pending",
    )
    assert capacity_condition({0: 2, 1: 2}, POLICY, 0)[0]  # shard 2 can still open


def test_shards_over_the_policy_keep_their_rows() -> None:
    # sessionsPerShard lowered below shard 0's load, maxShards below shard 4: rows stay.
    rows = shard_rows({0: 3, 4: 1}, 2, ShardPolicy(sessions_per_shard=2, max_shards=3), {0: UP})
    assert [(r["ordinal"], r["accounts"], r["capacity"]) for r in rows] == [
        (0, 3, 2),
        (1, 0, 2),
        (2, 0, 2),
        (3, 0, 0),
        (4, 1, 0),
    ]
    assert "leaseHolder" not in rows[1] and rows[1]["leaseCurrent"] is False


def test_deleting_accounts_count_but_are_not_pending() -> None:
    status = status_of([account(1, None, deleting=True), account(2, None)], 1, {0: UP})
    assert (status["accounts"], status["pending"]) == (2, 1)


def test_the_policy_condition_tells_what_could_not_apply() -> None:
    found = conditions(status_of([], 1, {}, spec=FleetSpec(min_shards=5, max_shards=2)))
    applied = found["PolicyApplied"]
    assert (applied["status"], applied["reason"]) == ("False", "Adjusted")
    assert applied["message"].startswith("minShards 5 is above maxShards 2: 2 apply; in effect:")


def test_an_unchanged_fleet_computes_the_status_it_shows() -> None:
    accounts = [account(1, 0)]
    first = status_of(accounts, 1, {0: UP})
    later = NOW + timedelta(minutes=5)
    again = status_of(accounts, 1, {0: UP}, shown=first, now=later)
    assert again == first
    assert not changed(first, again)
    # A change of status is a transition, with its time; the others keep theirs.
    down = status_of(accounts, 1, {0: LeaseView(f"{STS}-0", False)}, shown=first, now=later)
    assert changed(first, down)
    times = {c["type"]: c["lastTransitionTime"] for c in down["conditions"]}
    assert times["Ready"] == "2026-12-01T12:05:00.000Z"
    assert times["CapacityAvailable"] == "2026-12-01T12:00:00.000Z"


def test_a_duplicate_fleet_is_told_and_cleared_of_fleet_fields() -> None:
    status = duplicate_status(fleet(), {}, "wafleet", STS, NOW)
    assert status["accounts"] is None and status["shards"] is None  # removed by the merge patch
    assert status["moves"] is None and status["movesInProgress"] is None
    assert status["draining"] is None
    ready = conditions(status)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Duplicate")
    assert ready["message"].startswith(
        f"the fleet wafleet (the oldest) governs the StatefulSet {STS}"
    )
    shown = {"observedGeneration": 4, "conditions": status["conditions"]}
    assert not changed(shown, status)  # absent is null


def test_lease_view() -> None:
    renewed = (NOW - timedelta(seconds=5)).isoformat()
    spec = {"holderIdentity": "pod-0", "renewTime": renewed, "leaseDurationSeconds": 15}
    assert lease_view(spec, NOW) == LeaseView("pod-0", True)
    assert lease_view(spec, NOW + timedelta(seconds=20)) == LeaseView("pod-0", False)
    assert lease_view({"holderIdentity": ""}, NOW) == LeaseView(None, False)
    assert lease_view(None, NOW) == LeaseView()


def test_the_reporter_trusts_its_own_write_while_the_index_lags() -> None:
    clock = [100.0]
    reporter = Reporter(fresh=10, clock=lambda: clock[0])
    written = {"pending": 1}
    assert reporter.shown("u", {}) == {}
    reporter.wrote("u", written)
    assert reporter.shown("u", {}) == written  # the index has not shown the write yet
    clock[0] += 11
    assert reporter.shown("u", {"pending": 2}) == {"pending": 2}  # then the index decides
    assert "u" not in reporter.written


async def test_the_report_loop_runs_on_a_kick_and_survives_a_failed_round() -> None:
    reporter = Reporter(interval=3600, debounce=0.01)
    calls: list[int] = []
    done = asyncio.Event()

    async def report() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise KubeError(503, "ServiceUnavailable", "etcd")
        done.set()

    reporter.start(report)
    try:
        reporter.kick()
        reporter.kick()  # kicks coalesce
        await asyncio.wait_for(_until(lambda: len(calls) == 1), 5)
        reporter.kick()  # the loop is alive after the failure
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await reporter.stop()
    assert calls == [0, 1]


async def _until(probe: Callable[[], bool]) -> None:
    while not probe():
        await asyncio.sleep(0.01)


# --- moves and draining shards -------------------------------------------------------------

OPENED = "2026-12-01T11:58:00Z"


def moving(
    n: int,
    shard: int | None,
    move_to: str | None = None,
    handoff: Handoff | None = None,
) -> AccountInfo:
    return AccountInfo(
        f"wa-{n}",
        f"+4071200000{n}",
        "2026-01-01T00:00:00Z",
        shard,
        phase="Connected",
        move_to=move_to,
        handoff=handoff,
    )


def test_draining_shards_are_marked_and_listed() -> None:
    rows = shard_rows({0: 1, 1: 2, 2: 1}, 3, POLICY, {0: UP}, frozenset({2, 7}))
    assert [(r["ordinal"], r["draining"]) for r in rows] == [(0, False), (1, False), (2, True)]
    accounts = [account(1, 0), account(2, 2)]
    status = status_of(accounts, 3, {0: UP}, draining=frozenset({2, 1}))
    assert status["draining"] == [1, 2]  # sorted; a shard without a row still drains
    assert [r["draining"] for r in status["shards"]] == [False, True, True]


def test_moves_in_progress_are_listed_by_account() -> None:
    opened = Handoff("m1", 0, 1, OPENED, reason="drain")
    relabelled = Handoff("m2", 2, 0, OPENED, generation=7, reason="failover")
    accounts = [
        moving(3, 0, handoff=relabelled),  # relabelled: already labelled for its target
        moving(1, 0, handoff=opened),
        moving(2, 0, move_to="2"),  # asked for, not opened yet
        moving(4, 1, move_to="the big one"),  # not an ordinal: the operator says so elsewhere
        account(5, 0),  # not moving
    ]
    status = status_of(accounts, 3, {0: UP})
    assert status["moves"] == [
        {
            "account": "wa-1",
            "from": 0,
            "to": 1,
            "reason": "drain",
            "since": OPENED,
            "step": "Opened",
        },
        {"account": "wa-2", "from": 0, "to": 2, "reason": "requested", "step": "Opened"},
        {
            "account": "wa-3",
            "from": 2,
            "to": 0,
            "reason": "failover",
            "since": OPENED,
            "step": "Restoring",
        },
        {"account": "wa-4", "from": 1, "reason": "requested", "step": "Opened"},
    ]
    assert status["movesInProgress"] == 4


def test_move_rows_take_the_placement_and_stop_at_a_thousand() -> None:
    unplaced = moving(1, None, move_to="1")
    assert move_rows([unplaced], {"wa-1": 2}) == (
        [{"account": "wa-1", "from": 2, "to": 1, "reason": "requested", "step": "Opened"}],
        1,
    )
    assert move_rows([unplaced], {})[0] == [
        {"account": "wa-1", "to": 1, "reason": "requested", "step": "Opened"}
    ]
    for at in ("", "yesterday", "2026-12-01", "2026-12-01T12:00:00"):  # no time, or no zone
        undated = Handoff("m", 0, 1, at)
        assert "since" not in move_rows([moving(1, 0, handoff=undated)], {})[0][0], at
    odd = Handoff("m", -1, 2, OPENED, reason="r" * 100)
    assert move_rows([moving(1, 0, handoff=odd)], {})[0][0] == {
        "account": "wa-1",
        "to": 2,
        "reason": "r" * 64,
        "since": OPENED,
        "step": "Opened",
    }
    dated = Handoff("m", 0, 1, "2026-12-01T12:00:00.123+02:00")
    assert move_rows([moving(1, 0, handoff=dated)], {})[0][0]["since"] == dated.at
    many = [moving(n, 0, move_to="1") for n in range(1200)]
    rows, count = move_rows([*many, many[0]], {})  # the same account twice counts once
    assert (len(rows), count) == (1000, 1200)
    assert rows[0]["account"] == "wa-0" and rows == sorted(rows, key=lambda r: r["account"])


def test_a_move_changes_the_status_and_its_end_clears_it() -> None:
    still = [account(1, 0)]
    first = status_of(still, 1, {0: UP})
    asked = status_of([moving(1, 0, move_to="1")], 1, {0: UP}, shown=first)
    assert changed(first, asked)
    done = status_of(still, 1, {0: UP}, shown=asked)
    assert done["moves"] is None and done["movesInProgress"] == 0
    assert changed(asked, done)  # null removes the rows


def test_the_policy_condition_names_what_moves() -> None:
    spec = FleetSpec(drain=frozenset({2}), failover=True, failover_after=90.0)
    applied = conditions(status_of([], 1, {}, spec=spec))["PolicyApplied"]
    assert applied["status"] == "True"
    assert applied["message"].endswith(
        "drain [2] (fleet), failover after 90 s (fleet), moves 5 at a time, timeout 30 s"
    )


def test_a_move_whose_source_let_go_shows_handed_over() -> None:
    handoff = Handoff(id="m1", source=0, target=1, at="2026-12-01T00:00:00Z")
    waiting = AccountInfo("wa-a", "+40712345678", "", 0, handoff=handoff)
    let_go = AccountInfo("wa-b", "+40712345679", "", 0, handoff=handoff, handed_over="m1")
    rows, count = move_rows([waiting, let_go], {"wa-a": 0, "wa-b": 0})
    assert count == 2
    assert [row["step"] for row in rows] == ["Opened", "HandedOver"]


def test_a_planned_move_not_yet_opened_shows_the_planners_reason() -> None:
    planned = AccountInfo("wa-a", "+40712345678", "", 2, move_to="0", move_reason="drain")
    asked = AccountInfo("wa-b", "+40712345679", "", 2, move_to="1")
    rows, _ = move_rows([planned, asked], {"wa-a": 2, "wa-b": 2})
    assert [(row["reason"], row["step"], row["to"]) for row in rows] == [
        ("drain", "Opened", 0),
        ("requested", "Opened", 1),
    ]
