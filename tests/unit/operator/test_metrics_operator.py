"""The operator's metrics read back: moves counted by result through the real steps
(moves.py on the stand-in API server of test_moves), the fleet gauges from the indexes
(the queue, shard loads, an expired Lease), and /metrics beside /readyz."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import kopf
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from unit.operator.test_moves import STS, Api, account_cr, lease, opened, world

from wafleet.core.metrics import Metrics
from wafleet.kube.handoff import HANDOFF_ANNOTATION, MOVE_TO_ANNOTATION, Handoff
from wafleet_operator import fleet_view
from wafleet_operator.actions import info_of
from wafleet_operator.metrics import (
    COLLECTOR,
    FleetGauges,
    OperatorCollector,
    OperatorCounts,
    move_reason,
)
from wafleet_operator.moves import step
from wafleet_operator.readiness import Readiness, readiness_app

G = 1796146421711


def metrics_of(collector: OperatorCollector) -> Metrics:
    metrics = Metrics(process=False)
    metrics.add(collector)
    return metrics


async def take_step(state: Any, indexes: Any, api: Api) -> None:
    await step(state, kopf.Body(copy.deepcopy(api.account)), indexes)


async def step_alone(api: Api, counts: OperatorCounts) -> None:
    """One step of another account (its own stand-in API), counting into ``counts``."""
    state, indexes = world(api)
    await take_step(replace(state, counts=counts), indexes, api)


def handoff_id(api: Api) -> str:
    handoff = Handoff.parse(api.account["metadata"]["annotations"][HANDOFF_ANNOTATION])
    assert handoff is not None
    return handoff.id


async def test_moves_are_counted_by_result_through_the_real_steps() -> None:
    api = Api(account_cr(**{MOVE_TO_ANNOTATION: "1", "wafleet.io/move-reason": "drain"}))
    state, indexes = world(api)
    metrics = metrics_of(OperatorCollector(state.counts))
    await take_step(state, indexes, api)  # opened
    assert metrics.sample("wafleet_operator_moves_started_total", {"reason": "drain"}) == 1
    api.account["status"]["handoff"] = {"id": handoff_id(api), "generation": G}
    await take_step(state, indexes, api)  # relabelled onto shard 1
    api.account["status"] = {
        "phase": "Connected",
        "handoff": {**api.account["status"]["handoff"], "restored": G},
    }
    await take_step(state, indexes, api)  # closed
    assert api.reasons() == ["MoveStarted", "HandedOver", "Moved"]
    assert metrics.sample("wafleet_operator_moves_total", {"result": "moved"}) == 1

    refused = Api(account_cr(**{MOVE_TO_ANNOTATION: "one"}))
    await step_alone(refused, state.counts)
    assert refused.reasons() == ["MoveRefused"]
    cancelled = Api(account_cr(**{MOVE_TO_ANNOTATION: "1", HANDOFF_ANNOTATION: opened().to_json()}))
    cancelled.account["status"]["handoff"] = {"id": "m1", "error": "the backup store refused"}
    await step_alone(cancelled, state.counts)
    assert cancelled.reasons() == ["MoveCancelled"]
    for result, count in (("moved", 1), ("refused", 1), ("cancelled", 1)):
        assert metrics.sample("wafleet_operator_moves_total", {"result": result}) == count
    assert metrics.sample("wafleet_operator_moves_started_total", {"reason": "requested"}) == 0
    assert state.counts is not COLLECTOR.counts  # a state made here counts on its own


def test_a_persons_free_text_reason_is_requested() -> None:
    assert move_reason("rebalance") == "rebalance"
    assert move_reason("because I said so") == "requested"
    assert move_reason(None) == "requested"


def test_fleet_gauges_come_from_the_indexes() -> None:
    api = Api(account_cr(0))
    state, indexes = world(api, replicas=2, leases={0: 1.0, 1: 60.0})  # shard 1's pod died
    on_one = info_of({**account_cr(1), "metadata": {**account_cr(1)["metadata"], "name": "b"}})
    unplaced = account_cr(0)
    unplaced["metadata"] = {**unplaced["metadata"], "name": "c", "labels": {}}
    moving = account_cr(0, **{MOVE_TO_ANNOTATION: "1"})
    moving["metadata"]["name"] = "d"
    indexes.accounts.update({"b": [on_one], "c": [info_of(unplaced)], "d": [info_of(moving)]})
    gauges = fleet_view.gauges(state, indexes)
    assert gauges == FleetGauges(
        waiting=1,
        moving=1,
        replicas=2,
        shard_accounts={0: 2, 1: 1},
        lease_expired={0: False, 1: True},
    )
    collector = OperatorCollector(state.counts)
    metrics = metrics_of(collector)
    assert metrics.sample("wafleet_operator_accounts_waiting") is None  # not ready: nothing
    collector.ready = lambda: True
    collector.fleet = lambda: fleet_view.gauges(state, indexes)
    assert metrics.sample("wafleet_operator_ready") == 1
    assert metrics.sample("wafleet_operator_accounts_waiting") == 1
    assert metrics.sample("wafleet_operator_moves_in_progress") == 1
    assert metrics.sample("wafleet_operator_connector_replicas") == 2
    assert metrics.sample("wafleet_operator_shard_accounts", {"shard": "0"}) == 2
    assert metrics.sample("wafleet_operator_shard_lease_expired", {"shard": "1"}) == 1
    assert metrics.sample("wafleet_operator_shard_lease_expired", {"shard": "0"}) == 0


def test_a_released_lease_is_not_an_expired_one() -> None:
    api = Api(account_cr(0))
    state, indexes = world(api, replicas=3)
    released = {**lease(60), "holderIdentity": None}
    indexes.leases[f"{STS}-shard-2"] = [released]  # scaled away, or starting again
    assert fleet_view.gauges(state, indexes).lease_expired == {0: False, 1: False, 2: False}


async def test_metrics_are_served_beside_readyz() -> None:
    collector = OperatorCollector()
    collector.counts.placements = 3
    readiness = Readiness()
    async with TestClient(TestServer(readiness_app(readiness, metrics_of(collector)))) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        assert families["wafleet_operator_placements"].type == "counter"
        assert families["wafleet_operator_placements"].samples[0].value == 3
        assert (await client.get("/readyz")).status == 503
    async with TestClient(TestServer(readiness_app(readiness))) as client:
        assert (await client.get("/metrics")).status == 404  # not asked for: not served
